"""The `ds2` command line: the only layer that prints or imports click (with ds2_keras.ingest's commands).

May import: every layer and ds2_keras.ingest.
"""
