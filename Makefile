# Two commands do everything on a fresh machine:
#   make demo   set up, then synthesize a corpus, ingest, train, evaluate, export, transcribe
#   make test   set up, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The TensorFlow build: cpu (tensorflow-cpu on x86-64) or cuda (tensorflow[and-cuda]); see docs/install.md.
TF_BUILD ?= cpu
DEMO ?= demo
DEMO_UTTERANCES ?= 3000
DEMO_EPOCHS ?= 2
DEMO_PRESET ?= small
DEMO_BATCH ?= 16
# The demo's 2 epochs are too short for regularization (SpecAugment, dropout) to pay
# (docs/benchmarks.md: "The small recipe").
DEMO_SET ?= --set spec_augment=false --set dropout=0

.PHONY: setup test-setup demo test clean-demo

setup: $(VENV)/.installed
test-setup: $(VENV)/.installed-test

# What ds2 needs; the test extras (kenlm builds from source) only for make test.
$(VENV)/.installed: setup.cfg setup.py pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[$(TF_BUILD)]"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[$(TF_BUILD),test]"
	touch $@

test: test-setup
	$(BIN)/pytest -q

demo: setup
	@start=$$(date +%s); set -e; export PATH="$(abspath $(BIN)):$$PATH"; \
	echo "== 1/6 synthesize and ingest the default corpus ($(DEMO_UTTERANCES) utterances)"; \
	ds2 ingest synth $(DEMO)/corpus -n $(DEMO_UTTERANCES) --seed 0; \
	echo "== 2/6 train ($(DEMO_PRESET) preset, $(DEMO_EPOCHS) epochs)"; \
	ds2 fit --manifest train:$(DEMO)/corpus/train.csv --manifest val:$(DEMO)/corpus/val.csv \
	  -e $(DEMO_EPOCHS) -z $(DEMO_BATCH) -s $(DEMO)/model --preset $(DEMO_PRESET) $(DEMO_SET) --cache; \
	echo "== 3/6 evaluate on voices never heard in training (greedy decoding)"; \
	ds2 evaluate --manifest test:$(DEMO)/corpus/test.csv --model-file $(DEMO)/model/model.keras --wer \
	  --inference-file $(DEMO)/test-predictions.csv --plots $(DEMO)/plots; \
	echo "== 4/6 the same with beam search and a 3-gram LM built from the training transcripts"; \
	ds2 lm build $(DEMO)/lm.arpa --manifest $(DEMO)/corpus/train.csv --order 3; \
	ds2 evaluate --manifest test:$(DEMO)/corpus/test.csv --model-file $(DEMO)/model/model.keras --wer \
	  --decoder beam --lm $(DEMO)/lm.arpa --worst 3; \
	echo "== 5/6 export a SavedModel for TF Serving"; \
	ds2 export --model-file $(DEMO)/model/model.keras $(DEMO)/serving; \
	echo "== 6/6 transcribe a test utterance"; \
	ds2 transcribe --model-file $(DEMO)/model/model.keras $$(sed -n 2p $(DEMO)/corpus/test.csv | cut -d, -f1); \
	echo; echo "artefacts in $(DEMO)/: corpus/ (audio, manifests), model/ (model.keras, config.json,"; \
	echo "  best.keras, history.json, TensorBoard logs/), lm.arpa, test-predictions.csv, plots/, serving/ (SavedModel)"; \
	echo "demo took $$(( $$(date +%s) - start )) s"

clean-demo:
	rm -rf $(DEMO)
