"""English sentences for the synthetic corpus: a hand-written list plus a seeded composer.

Hand-written sentences give natural rhythm and vocabulary; composed ones (subjects, verbs,
objects, places and times drawn from word lists) supply thousands more distinct sentences,
so a model trained on the corpus has to learn characters rather than memorize sentences.
Every sentence normalizes (ds2_keras.core.alphabet.normalize_text) to letters, apostrophes and
spaces, holds 4 to 14 words, and spells numbers out.
"""
from __future__ import annotations

import numpy as np

from ds2_keras.core.alphabet import number_to_words, normalize_text

MIN_WORDS = 4
MAX_WORDS = 14

WRITTEN: tuple[str, ...] = tuple(line.strip() for line in """
The kettle began to whistle just as the phone rang.
She folded the map and put it back in the glove box.
We missed the last bus and had to walk home in the rain.
My grandfather kept a jar of buttons on the kitchen shelf.
The museum closes early on the first Monday of every month.
Please turn off the lights when you leave the room.
Nobody noticed that the clock had stopped at midnight.
The children built a snowman with a carrot for a nose.
He forgot his umbrella on the train again this morning.
A small dog barked at the mailman from behind the gate.
The soup needs more salt and a little black pepper.
They painted the fence white before the summer festival.
I can't remember where I left my reading glasses.
The river flooded the lower fields after a week of storms.
Our neighbor grows tomatoes, beans and squash in her yard.
The library asks visitors to speak quietly near the reading tables.
Fresh bread was cooling on the windowsill of the bakery.
He whistled a cheerful tune while he fixed the old bicycle.
The plane landed twenty minutes ahead of schedule.
She wrote a long letter to her cousin in the mountains.
The candle flickered and went out in the cold draft.
We planted seven apple trees along the northern wall.
The teacher asked everyone to bring a pencil and a ruler.
A flock of geese flew south over the quiet lake.
The mechanic said the brakes would be ready by Thursday.
It took three hours to climb to the top of the hill.
Don't forget to water the plants while I'm away.
The old bridge creaked under the weight of the wagon.
My sister plays the cello in the city orchestra.
The fog was so thick that we could barely see the road.
He poured the coffee into two chipped blue mugs.
The farmer sold eggs and honey at the Saturday market.
Thunder rolled across the valley long after the lightning.
She found a silver coin buried in the sand.
The committee will announce the winners at the end of the evening.
We ate dinner on the porch and watched the sunset.
The cat knocked a glass of water off the table.
His handwriting was so small that nobody could read it.
The train to the coast leaves from platform four.
Every spring the swallows return to nest under the roof.
The baker rises at four o'clock to light the ovens.
Could you pass me the butter and the strawberry jam?
The wind tore the sails and the boat drifted toward the rocks.
I borrowed a ladder from the man who lives next door.
The doctor told him to rest and drink plenty of water.
Snow covered the cars parked along the narrow street.
They argued for an hour about the best way to cook rice.
The lighthouse keeper climbed the stairs twice every night.
A thin layer of dust covered the piano keys.
She hummed softly while she brushed her daughter's hair.
The goalkeeper dove to the left and caught the ball.
Our flight was delayed because of a storm over the ocean.
The old man fed the pigeons in the park every afternoon.
You should check the tires before a long drive.
The violinist tuned her instrument while the audience waited.
Half of the cookies were gone before dinner.
The fisherman mended his nets on the wooden pier.
We could hear the waves crashing against the cliffs all night.
The store ran out of milk by the middle of the afternoon.
He kept every ticket from every concert he ever attended.
The garden gate squeaks whenever the wind blows from the west.
My brother taught himself to juggle during the long winter.
The painter mixed yellow and blue to make a bright green.
Please write your name at the top of each page.
The horses stood quietly in the shade of the oak tree.
She laughed so hard that she spilled her tea.
The postman delivered a heavy parcel wrapped in brown paper.
The bells of the cathedral rang at noon.
We spent the whole afternoon sorting old photographs.
The hikers followed a narrow trail along the edge of the canyon.
His new shoes squeaked on the polished floor of the hall.
The moon rose slowly over the dark pine forest.
I think the bakery on the corner makes the best pies.
The students whispered during the history exam.
A sudden gust of wind blew the papers off the desk.
The captain ordered the crew to lower the anchor.
She keeps a notebook full of recipes from her grandmother.
The streetlights came on one by one as evening fell.
We waited for the rain to stop before we crossed the field.
The carpenter measured the doorway twice before he cut the wood.
My uncle tells the same jokes at every family dinner.
The orange tree in the courtyard is over a hundred years old.
There were footprints in the snow leading to the barn.
The chef tasted the sauce and added a pinch of sugar.
The children chased butterflies across the meadow.
He apologized for arriving so late to the meeting.
The radio played old songs all through the night.
An owl hooted somewhere deep in the woods.
The waiter brought us a basket of warm rolls.
She painted her bedroom a pale shade of lavender.
The ferry crosses the bay every thirty minutes in summer.
Nobody knew who had left the basket of apples on the step.
The scientist recorded the temperature every hour for a week.
I would rather walk than wait another hour for the bus.
The puppy chewed a hole in my favorite slipper.
The ice on the pond was too thin for skating.
Our team practiced in the gym because of the heavy rain.
The shopkeeper counted the coins and handed me my change.
They hung colorful lanterns along the path to the river.
The mountain air was cold and smelled of pine needles.
She always reads the last page of a book first.
The grocer stacked the oranges into a tall pyramid.
The bus driver waved to every child at the school gate.
His voice echoed through the empty concert hall.
We found a family of ducks living under the dock.
The new bridge will open to traffic next spring.
The smell of roasted coffee drifted down the street.
The nurse checked on the patients every two hours.
My aunt knits warm scarves for everyone in the family.
The thief escaped through a window on the second floor.
Lightning struck the tall poplar at the end of the lane.
The cook burned the toast but nobody complained.
A crowd gathered to watch the street musicians play.
The old typewriter still works if you press the keys hard.
Would you like milk or lemon with your tea?
The tide came in and washed away our sandcastle.
The farmer's dog herded the sheep into the pen.
She spent the morning weeding the vegetable garden.
The pilot announced that we would land in twenty minutes.
The boys skipped flat stones across the surface of the pond.
The hotel room had a view of the harbor.
He tied the boat to the post with a thick rope.
We ran out of firewood on the coldest night of the year.
The baby finally fell asleep after a long bath.
A single red leaf floated down onto the bench.
The judge listened carefully to both sides of the story.
Our kitchen smells of cinnamon whenever my mother bakes.
The workers repaired the roof before the winter storms.
She caught the early train and arrived before anyone else.
The lamp in the hallway flickers when the heater turns on.
The sailors sang loudly as they pulled the ropes.
I need to buy stamps, envelopes and a roll of tape.
The village holds a harvest fair every October.
The actor forgot his lines in the middle of the play.
Rain dripped steadily from the edge of the roof.
The kitten curled up on the warm windowsill and slept.
They drove across the desert for two whole days.
The gardener trimmed the hedges into neat round shapes.
The wooden floor creaked with every step we took.
He kept his promise and called his mother every Sunday.
The bread rose slowly in the cool kitchen.
The hills turned golden in the late afternoon light.
We heard a strange noise coming from the attic.
The tailor shortened the sleeves of my winter coat.
Our dog refuses to go outside when it is raining.
The cyclist stopped to fix a flat tire by the road.
The book was much better than the film.
She packed sandwiches, apples and a thermos of soup.
The geese honked loudly as they crossed the road.
The architect showed us a model of the new library.
The snow melted quickly once the sun came out.
The postcard arrived three weeks after she came home.
The river was so clear that we could see the fish.
My friend collects old maps and broken clocks.
The wind chimes rang softly on the back porch.
The fire crackled while we told stories in the dark.
A tall stranger asked us for directions to the station.
The children lined up quietly for their lunch.
The roof of the barn collapsed under the heavy snow.
We watched the fireworks from the top of the hill.
The clerk stamped my passport without looking up.
The coffee was too hot to drink right away.
The soldiers marched through the square at dawn.
Her garden is full of roses, daisies and sunflowers.
The old dog slept by the fire all evening.
The shop on the corner sells newspapers and sweets.
He climbed the ladder to rescue the kitten from the tree.
The fields were white with frost this morning.
The musicians played until the candles burned down.
I left my keys on the kitchen counter.
The ship sailed slowly out of the foggy harbor.
They laughed at the story about the runaway goat.
The professor drew a large circle on the blackboard.
The baby giggled every time the dog sneezed.
The sun set behind the mountains and the air grew cold.
She forgot to lock the back door last night.
The engine coughed twice and then started.
We gathered blackberries along the edge of the field.
The mayor cut the ribbon to open the new park.
His jacket was torn at the elbow and the collar.
The stars were bright above the quiet village.
Please close the window before the rain comes in.
The cows wandered slowly back to the barn.
A young fox crept across the frozen garden.
The cook chopped onions until her eyes watered.
The map showed a hidden path through the marsh.
My cousin moved to a small town near the sea.
The soup simmered on the stove all afternoon.
The pianist bowed and the audience stood up to cheer.
They carried the heavy table up three flights of stairs.
The window was open and the curtains moved in the breeze.
The bus was crowded with students going home.
The beach was empty except for a few seagulls.
The kettle is on, so the tea will be ready soon.
The hunter followed the tracks deep into the forest.
Our train stopped for an hour in the middle of nowhere.
She sewed a patch onto the knee of his trousers.
The wolves howled from the hills above the farm.
I have never seen so many stars in one night.
The restaurant was closed, so we cooked dinner at home.
The swimmer crossed the lake in less than an hour.
The parade moved slowly down the main street.
A cold wind blew across the empty parking lot.
The girl in the yellow raincoat jumped into every puddle.
He sharpened the knife before he carved the roast.
The factory whistle blew at exactly five o'clock.
We spent the afternoon flying kites on the beach.
The doctor's office is on the third floor.
The snow kept falling until the roads disappeared.
She painted the mountains in shades of purple and gray.
The old clock in the hall chimes every quarter hour.
A squirrel buried acorns under the garden bench.
The guide led us through the caves with a lantern.
My father fixed the leaking faucet with a new washer.
The strawberries were sweet and still warm from the sun.
The police officer helped the old woman across the road.
The wedding cake had five layers and white roses.
Our neighbors are building a treehouse for their children.
The sky turned dark green just before the hail started.
They shared a pot of tea and a plate of biscuits.
The goat ate the laundry right off the line.
The runner crossed the finish line and collapsed on the grass.
I heard the news on the radio this morning.
The market was busy with shoppers buying fruit and fish.
The farmer fixed the broken fence before the cows escaped.
The ocean was calm and the water sparkled in the sun.
The librarian stamped the books and smiled at the boy.
He painted a picture of the harbor at sunrise.
A large truck blocked the entrance to the parking lot.
We played cards until well after midnight.
The queen waved to the crowd from her carriage.
The leaves crunched under our boots on the forest path.
My grandmother's garden is full of herbs and lavender.
The students built a small robot for the science fair.
The knight rode through the gates of the castle.
The puppy followed the children all the way to school.
The waves grew larger as the storm came closer.
Please sign your name on the line at the bottom.
The bees buzzed around the flowers in the warm sunshine.
They rowed across the lake to the small island.
The cheese shop smells wonderful but very strong.
The heavy door closed behind us with a loud bang.
The farmer drove his tractor slowly down the lane.
A bright rainbow appeared over the valley after the storm.
The little boy lost his first tooth at breakfast.
The climbers reached the summit just before noon.
She whispered the secret into her friend's ear.
The stew tastes even better on the second day.
The train whistle echoed through the empty valley.
He spent his savings on a small boat and a fishing rod.
The windows rattled every time a truck went past.
Our teacher read us a story about a brave little mouse.
The air smelled of smoke from the chimneys in town.
The trees along the avenue were planted a century ago.
She wore a green dress and a string of pearls.
The fox slipped under the fence and into the henhouse.
The mail carrier left the package on the front step.
Nobody wanted to sit next to the noisy machine.
The bakery sells out of croissants before eight o'clock.
The wind carried the sound of church bells across the fields.
He wrapped the present in newspaper and tied it with string.
The sheep grazed peacefully on the green hillside.
We cleaned the whole house before our guests arrived.
The ship's cook made pancakes for the entire crew.
The water in the well was cold and tasted of stone.
The boy pressed his face against the toy shop window.
A storm knocked down the old elm tree last night.
The gardener planted tulips along the front path.
I wonder why the birds stopped singing so suddenly.
The guests danced in the garden until the lanterns went out.
The coach told the players to drink more water.
My mother keeps her jewelry in a small wooden box.
The sound of rain on the roof helped me fall asleep.
The merchant weighed the spices on a brass scale.
Her laughter filled the whole kitchen.
The road curved sharply around the edge of the lake.
The old photograph showed my grandparents on their wedding day.
We need more chairs for the party on Saturday.
The fisherman caught nothing but an old boot.
The mountain road was closed because of falling rocks.
The candles on the birthday cake would not stay lit.
She planted a lemon tree in a pot by the door.
The thunderstorm knocked out the power for six hours.
The little girl drew a purple horse with wings.
The elevator stopped between the fourth and fifth floors.
A line of ants marched across the picnic blanket.
The night train arrives in the capital at dawn.
The baker gave the children the broken cookies for free.
The sunflowers turned slowly to follow the sun.
He hung his wet coat on a hook by the fire.
The school band practiced the same song for weeks.
The frogs sang loudly in the pond after the rain.
Our car broke down halfway up the mountain.
The shepherd counted his sheep as they entered the fold.
The ice cream melted before we could finish it.
A lonely cloud drifted across the bright blue sky.
The grocery list was longer than we expected.
The baby duck followed its mother into the water.
The paint was still wet, so we did not touch the door.
The sailors spotted land after three weeks at sea.
The old woman sold flowers outside the train station.
I spilled coffee on my notes just before the lecture.
The workers laid bricks along the new garden wall.
We could smell the ocean long before we saw it.
Why is the front door standing wide open?
Where did you put the scissors and the glue?
How long does it take to boil an egg?
When will the next ferry leave for the island?
What time does the post office close on Fridays?
Who left their muddy boots in the hallway?
Have you seen my blue scarf anywhere?
Is this the road that leads to the lighthouse?
Can you hear the owls calling in the dark?
Did anyone remember to feed the goldfish?
Should we take the long path or the short one?
Would you mind opening the window a little?
How many apples do we need for the pie?
Which of these keys opens the garden shed?
Are the children still playing in the snow?
Put the eggs in the basket and carry it carefully.
Stir the porridge slowly so that it does not burn.
Keep your hands inside the boat at all times.
Wait here until the rain stops.
Bring a warm coat because the nights are cold.
Turn left at the church and follow the river.
Remember to close the gate behind you.
Wash your hands before you sit down to eat.
Tell your sister that dinner is almost ready.
Hold the ladder steady while I climb up.
She said that the meeting would start at nine.
He promised that he would never be late again.
They told us that the bridge had been washed away.
I knew that something was wrong when the dog stopped barking.
We hoped that the weather would clear by the afternoon.
The report said that the river had risen during the night.
Everyone agreed that the soup was far too spicy.
My friend claims that she once saw a bear in the garden.
It's going to be a long and quiet winter.
They're planning a trip to the mountains next month.
We'll meet you at the station in an hour.
She's been learning to play the flute since last summer.
I'd like a cup of tea and a slice of lemon cake.
He's the only one who knows the way through the forest.
You're welcome to stay for dinner if you like.
The dog's bowl was empty again by the afternoon.
The children's voices carried across the playground.
Nine hundred people came to hear the choir sing.
The tower is three hundred and twelve steps high.
The recipe calls for two cups of flour and one egg.
She turned forty years old on the first day of spring.
There are twelve months and fifty two weeks in a year.
The old oak tree is more than two hundred years old.
We drove for eleven hours without stopping once.
The library owns almost sixty thousand books.
The bus comes every fifteen minutes until midnight.
He counted seventy three birds on the telephone wire.
The village has only one shop and a tiny school.
The concert hall holds about two thousand people.
It snowed for four days and five nights without stopping.
The ship carried eight hundred barrels of olive oil.
Quietly, the cat crept toward the sleeping mouse.
Suddenly, the lights went out and the music stopped.
Unfortunately, the museum was closed for repairs.
Slowly, the fog lifted from the surface of the lake.
Later that evening, we walked down to the harbor.
Every morning, the old man swept the steps of the church.
After the storm, the beach was covered with seaweed.
Before the sun came up, the bakers were already at work.
In the middle of the night, the baby started to cry.
At the end of the road stood a small white cottage.
Beneath the floorboards, they found a box of letters.
Without a word, he turned and walked out of the room.
""".strip().splitlines())

_FIRST_NAMES = (
    "Margaret Oliver Thomas Sophie Daniel Hannah Peter Lucy George Emily Samuel Clara Henry Alice "
    "Victor Nora Arthur Julia Edward Rachel Frank Grace Martin Helen Oscar Laura Felix Ruth Simon "
    "Irene Walter Agnes Leo Vera Hugo Mabel Isaac Rose Albert Naomi Jack Esther Ben Ada"
).split()
_PEOPLE = (
    "farmer teacher doctor sailor baker driver painter student neighbor soldier nurse pilot gardener "
    "fisherman carpenter musician writer engineer librarian shepherd merchant lawyer waiter dancer "
    "captain scientist stranger guard poet chef mechanic clerk judge tailor hunter miner potter "
    "singer traveler blacksmith shopkeeper banker plumber farmhand grocer jeweler butcher"
).split()
_PERSON_ADJECTIVES = (
    "old young tired clever quiet cheerful angry careful nervous patient busy lonely brave curious "
    "famous polite sleepy friendly stubborn generous gentle proud shy wise clumsy cautious restless "
    "hungry grumpy tall"
).split()
_RELATIVES = (
    "brother sister aunt uncle cousin neighbor teacher friend grandfather grandmother landlord boss "
    "doctor father mother son daughter partner"
).split()
_PRONOUNS = ("I", "we", "they", "you", "she", "he")
_POSSESSIVES = ("my", "our", "your", "their", "his", "her")

# (base, past) forms of verbs that take a physical object.
_VERBS = tuple(tuple(pair.split("/")) for pair in (
    "carry/carried paint/painted find/found lose/lost repair/repaired build/built clean/cleaned "
    "open/opened close/closed sell/sold buy/bought borrow/borrowed return/returned wash/washed "
    "move/moved hide/hid drop/dropped lift/lifted check/checked count/counted measure/measured "
    "deliver/delivered push/pushed pull/pulled fold/folded fill/filled empty/emptied polish/polished "
    "cover/covered mend/mended study/studied forget/forgot pack/packed guard/guarded watch/watched "
    "weigh/weighed inspect/inspected sketch/sketched wrap/wrapped steal/stole bring/brought "
    "throw/threw catch/caught break/broke choose/chose draw/drew keep/kept leave/left send/sent "
    "take/took show/showed hold/held shake/shook load/loaded tie/tied sort/sorted heat/heated "
    "test/tested order/ordered replace/replaced examine/examined collect/collected "
    "decorate/decorated lock/locked unlock/unlocked grab/grabbed share/shared drag/dragged "
    "rescue/rescued scrub/scrubbed label/labeled offer/offered admire/admired"
).split())
_THINGS = (
    "basket ladder kettle lantern suitcase blanket bicycle wagon umbrella mirror clock chair table "
    "window door box bottle jar bucket rope map letter parcel envelope key coin ring hammer shovel "
    "wheel boat fence gate cupboard drawer candle book notebook painting photograph violin piano "
    "drum helmet jacket scarf glove boot hat pillow carpet curtain barrel crate tent sack cart sled "
    "kite compass telescope microscope radio camera lamp plate bowl spoon knife fork pan pot teapot "
    "cup vase stone shell feather leaf branch log brick tile nail chain bell flag badge ticket diary "
    "calendar poster statue engine tractor truck sofa bench cushion quilt necklace bracelet wallet "
    "purse backpack trunk saddle anchor oar paddle blender toaster typewriter guitar trumpet flute "
    "harp globe fossil pumpkin melon onion cabbage loaf pie cake sandwich"
).split()
_THING_ADJECTIVES = (
    "red blue green yellow purple orange heavy broken rusty shiny wooden old new small large tiny "
    "enormous dusty wet dry empty cracked borrowed silver golden copper plastic leather woolen "
    "striped spotted square round narrow wide ancient cheap expensive strange lovely ugly clean "
    "dirty frozen warm crooked gleaming battered favorite spare"
).split()
_PLURALS = {"knife": "knives", "leaf": "leaves", "loaf": "loaves", "shelf": "shelves"}
_PLACE_PREPOSITIONS = (
    "near", "behind", "beside", "outside", "in front of", "not far from", "across from", "next to",
    "inside", "on the way to", "at the back of", "around the corner from",
)
_PLACES = (
    "river, bridge, church, school, bakery, harbor, station, market, library, museum, hospital, "
    "factory, farm, barn, lake, forest, castle, cottage, lighthouse, stadium, theater, hotel, "
    "fountain, windmill, village, cathedral, warehouse, pier, orchard, meadow, vineyard, mill, "
    "tower, garage, post office, town hall, bus stop, old quarry, fire station, swimming pool, "
    "playground, cemetery, courthouse, chapel, greenhouse, stable, monastery"
).split(", ")
_PAST_TIMES = (
    "yesterday", "last night", "this morning", "last week", "last summer", "at midnight",
    "before dinner", "after lunch", "during the storm", "before sunrise", "after the concert",
    "a week ago", "last year", "early this morning", "late last night", "on the way home",
    "just before noon", "after the wedding", "during the holidays", "long ago",
)
_FUTURE_TIMES = (
    "tomorrow", "next week", "tonight", "after breakfast", "next summer", "this weekend",
    "before the guests arrive", "later today", "in the morning", "next year", "after the meeting",
    "when the rain stops", "before winter comes", "at the end of the month",
)
_HABITS = (
    "every morning", "on weekends", "twice a week", "once a month", "every summer", "most evenings",
    "before breakfast", "after work", "every other day", "in the autumn", "on rainy days",
    "every spring",
)
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_MONTHS = ("January February March April May June July August September October November "
           "December").split()
_MODALS = ("could", "should", "might", "must", "would", "can't", "won't", "shouldn't", "didn't",
           "couldn't", "wouldn't", "can", "will", "may")
_QUESTION_WORDS = ("why", "where", "when", "how")
_STATES = ("were left", "were found", "were stacked", "were hidden", "were sold", "were piled up",
           "were lined up", "were stored", "were waiting", "were lying", "are kept", "are stored")


class _Composer:
    """Draws one sentence at a time from the templates below with a seeded generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def chance(self, probability: float) -> bool:
        return bool(self.rng.random() < probability)

    def person(self) -> str:
        """A singular third-person subject: a name, 'my cousin' or 'the tired baker'."""
        kind = self.rng.integers(3)
        if kind == 0:
            return self.pick(_FIRST_NAMES)
        if kind == 1:
            return f"{self.pick(_POSSESSIVES)} {self.pick(_RELATIVES)}"
        adjective = f"{self.pick(_PERSON_ADJECTIVES)} " if self.chance(0.6) else ""
        return f"the {adjective}{self.pick(_PEOPLE)}"

    def subject(self) -> str:
        return self.pick(_PRONOUNS) if self.chance(0.25) else self.person()

    def thing(self) -> str:
        """An object phrase: 'a rusty kettle', 'the lantern', 'three broken chairs'."""
        noun = self.pick(_THINGS)
        adjective = f"{self.pick(_THING_ADJECTIVES)} " if self.chance(0.6) else ""
        if self.chance(0.2):
            count = self.pick(("two", "three", "four", "five", "six", "several", "a few", "some",
                               "a dozen", "twenty", "many"))
            return f"{count} {adjective}{_add_s(noun)}"
        determiner = self.pick(("the", "a", "that", "this", "her", "his", "our", "their"))
        if determiner == "a" and (adjective or noun)[0] in "aeiou":
            determiner = "an"
        return f"{determiner} {adjective}{noun}"

    def place(self) -> str:
        return f"{self.pick(_PLACE_PREPOSITIONS)} the {self.pick(_PLACES)}"

    def past_time(self) -> str:
        kind = self.rng.integers(4)
        if kind == 0:
            return f"on {self.pick(_WEEKDAYS)}"
        if kind == 1:
            return f"in {self.pick(_MONTHS)}"
        return self.pick(_PAST_TIMES)

    def sentence(self) -> str:
        base, past = self.pick(_VERBS)
        template = int(self.rng.integers(10))
        if template == 0:
            extras = [self.place()] if self.chance(0.6) else []
            extras += [self.past_time()] if self.chance(0.5) else []
            return " ".join([self.subject(), past, self.thing(), *extras]) + "."
        if template == 1:
            return f"{_capital(self.past_time())}, {self.subject()} {past} {self.thing()}."
        if template == 2:
            return f"{self.subject()} will {base} {self.thing()} {self.pick(_FUTURE_TIMES)}."
        if template == 3:
            return f"did {self.subject()} {base} {self.thing()} {self.place()}?"
        if template == 4:
            return f"{self.subject()} {self.pick(_MODALS)} {base} {self.thing()}."
        if template == 5:
            return f"{self.person()} {_add_s(base)} {self.thing()} {self.pick(_HABITS)}."
        if template == 6:
            count = number_to_words(int(self.rng.integers(2, 1000)))
            adjective = self.pick(_THING_ADJECTIVES)
            return f"{count} {adjective} {_add_s(self.pick(_THINGS))} {self.pick(_STATES)} {self.place()}."
        if template == 7:
            return f"{self.pick(_FIRST_NAMES)} said that {self.subject()} {past} {self.thing()}."
        if template == 8:
            return f"{self.pick(_QUESTION_WORDS)} did {self.subject()} {base} {self.thing()}?"
        return f"{self.pick(('please', 'never', 'always', 'do not'))} {base} {self.thing()} {self.place()}."


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _add_s(word: str) -> str:
    """A noun's plural or a verb's third person: 'box' -> 'boxes', 'carry' -> 'carries'."""
    if word in _PLURALS:
        return _PLURALS[word]
    if word.endswith(("s", "sh", "ch", "x", "z")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def word_count(sentence: str) -> int:
    return len(normalize_text(sentence).split())


def compose_sentences(count: int, rng: np.random.Generator, exclude: set[str] = frozenset()) -> list[str]:
    """`count` distinct composed sentences of MIN_WORDS..MAX_WORDS words, none in `exclude`.

    Compared after normalization, so two sentences that differ only in punctuation or case
    count as one.
    """
    composer = _Composer(rng)
    seen = {normalize_text(s) for s in exclude}
    sentences: list[str] = []
    attempts = 0
    while len(sentences) < count:
        attempts += 1
        if attempts > 20 * count + 1000:
            raise ValueError(f"could not compose {count} distinct sentences (got {len(sentences)})")
        sentence = _capital(composer.sentence())
        key = normalize_text(sentence)
        if key in seen or not MIN_WORDS <= len(key.split()) <= MAX_WORDS:
            continue
        seen.add(key)
        sentences.append(sentence)
    return sentences


def sentence_pool(count: int, seed: int) -> list[str]:
    """`count` distinct sentences in a seeded random order, hand-written and composed mixed.

    At least as many composed sentences as hand-written ones go into the draw, so even a
    small corpus is not made of hand-written sentences alone.
    """
    rng = np.random.default_rng([seed, 0x5E47])
    written = list(WRITTEN)
    pool = written + compose_sentences(max(count, len(written)), rng, exclude=set(written))
    order = rng.permutation(len(pool))
    return [pool[i] for i in order[:count]]
