"""Word lists and PropBank roles the caption parser's rules read.

Each table says which words a rule applies to; the rules themselves are in
`caption_parser`. Numbered prepositional roles come from the verbs'
rolesets in propbank/propbank-frames (`frames/<lemma>.xml`).
"""

from typing import Dict, Sequence, Tuple

LOCATION_PREPOSITIONS = frozenset((
    'in', 'on', 'at', 'near', 'inside', 'outside', 'under', 'underneath',
    'beneath', 'above', 'below', 'beside', 'besides', 'behind',
    'between', 'among', 'amongst', 'upon', 'within', 'next', 'by', 'atop',
    'alongside', 'against', 'opposite', 'amid'))
DIRECTION_PREPOSITIONS = frozenset((
    'to', 'into', 'onto', 'toward', 'towards', 'across', 'through',
    'throughout', 'from', 'down', 'up', 'along', 'over', 'around', 'round',
    'past',
    'off', 'out', 'via', 'away', 'back', 'beyond', 'unto', 'thru'))
TIME_PREPOSITIONS = frozenset(('before', 'after', 'during', 'until', 'till',
                               'since'))
TIME_MARKERS = frozenset(('while', 'when', 'whilst', 'as', 'before', 'after',
                          'until', 'till', 'since', 'once', 'whenever'))
DIRECTION_ADVERBS = frozenset((
    'away', 'back', 'around', 'down', 'up', 'out', 'off', 'over', 'along',
    'forward', 'forwards', 'backward', 'backwards', 'home', 'upward',
    'downward', 'across', 'through', 'in', 'aside', 'apart', 'downhill',
    'uphill'))
LOCATION_ADVERBS = frozenset(('here', 'there', 'outside', 'inside',
                              'outdoors', 'indoors', 'nearby', 'somewhere',
                              'everywhere', 'upstairs', 'downstairs',
                              'next', 'nearby'))
# Companions of "with" that make it comitative rather than manner.
ANIMATE_NOUNS = frozenset((
    'man', 'men', 'woman', 'women', 'boy', 'boys', 'girl', 'girls', 'person',
    'people', 'child', 'children', 'kid', 'kids', 'baby', 'babies', 'friend',
    'friends', 'guy', 'guys', 'lady', 'ladies', 'mother', 'father', 'mom',
    'dad', 'son', 'daughter', 'brother', 'sister', 'family', 'player',
    'players', 'team', 'partner', 'someone', 'somebody', 'group', 'crowd',
    'couple', 'dog', 'dogs', 'cat', 'cats', 'horse', 'horses', 'bird',
    'birds', 'puppy', 'puppies', 'kitten', 'kittens', 'animal', 'animals',
    'monkey', 'monkeys', 'cow', 'cows', 'pet', 'pets', 'him', 'her', 'them',
    'me', 'us', 'himself', 'herself', 'themselves', 'each', 'other', 'teacher',
    'student', 'students', 'girlfriend', 'boyfriend', 'wife', 'husband',
    'rabbit', 'rabbits', 'hamster', 'hamsters', 'turtle', 'turtles',
    'elephant', 'elephants', 'panda', 'pandas', 'lion', 'lions', 'tiger',
    'tigers', 'bear', 'bears', 'duck', 'ducks', 'goat', 'goats', 'pig',
    'pigs', 'chicken', 'chickens', 'parrot', 'parrots', 'fish', 'owl',
    'mouse', 'mice', 'rat', 'rats', 'squirrel', 'squirrels', 'fox',
    'sheep', 'deer', 'chimpanzee', 'gorilla', 'doll', 'dolls', 'toddler',
    'toddlers', 'cop', 'officer', 'audience', 'trainer', 'owner', 'human',
    'humans', 'lamb', 'lambs', 'calf', 'goat', 'giraffe', 'zebra', 'camel',
    'infant', 'class', 'crowd', 'kitty', 'bunny', 'hedgehog', 'otter',
    'sloth', 'koala', 'seal', 'penguin', 'deer', 'cub', 'cubs'))
# Verbs whose object is the subject of their infinitive ("trains a dog to
# sit"); after other verbs the infinitive shares the subject ("uses a
# knife to cut").
OBJECT_CONTROL_VERBS = frozenset((
    'train', 'teach', 'help', 'ask', 'tell', 'want', 'allow', 'force', 'let',
    'encourage', 'order', 'invite', 'cause', 'get', 'make', 'persuade'))

# Verb lemmas whose PropBank rolesets (propbank-frames, frames/<lemma>.xml)
# number a prepositional argument that captions use often: lemma ->
# {preposition: role}. Everything else falls back to the ARGM rules.
_TO = ('to',)
_AT = ('at',)
_PLACES = ('in', 'into', 'on', 'onto', 'inside', 'over', 'under', 'upon',
           'atop', 'to')
NUMBERED_PREPOSITIONS: Dict[str, Dict[str, str]] = {}


def _number(lemmas: str, prepositions: Sequence[str], role: str) -> None:
  for lemma in lemmas.split():
    NUMBERED_PREPOSITIONS.setdefault(lemma, {}).update(
        {p: role for p in prepositions})


# Recipient, hearer or audience (give.01, throw.01, talk.01, show.01, ...).
_number('give hand pass throw show feed serve talk speak sing say '
        'explain teach read ask bring send', _TO, 'ARG2')
_number('throw shoot bark shout yell', _AT, 'ARG2')
# Destination of throw.01 ("thrown at, to, over"), push.01, pull.01,
# drag.01, move.01, bring.01; end point of lift.01.
_number('throw', ('into', 'onto', 'over', 'in', 'on', 'across'), 'ARG2')
_number('push pull drag move bring', ('into', 'onto', 'toward', 'towards'),
        'ARG2')
_number('lift', ('onto', 'into', 'to'), 'ARG4')
# Destination (put.01, place.01, add.02, lay.01, sprinkle.01, rub.01, ...).
_number('put place add lay set sprinkle drizzle spread rub roll insert',
        _PLACES, 'ARG2')
_number('pour', _PLACES, 'ARG3')  # pour.01: ARG2 is the source.
_number('drop fall', _PLACES, 'ARG4')  # drop.01, fall.01: end point.
_number('go come', _TO + ('into', 'onto'), 'ARG4')
_number('go come', ('from',), 'ARG3')
# Source (drink.01, take.01, remove.01, cut.01, slice.01, wipe.01).
_number('drink take remove cut slice wipe', ('from',), 'ARG2')
# Instrument or second ingredient (hit.01, chop.01, mix.01, fill.01, ...).
_number('hit beat chop grate season kick mix fill cover wash play', ('with',),
        'ARG2')
_number('cut rub spread wipe', ('with',), 'ARG3')
# Location of a posture (sit.01, stand.01, lay.01 used for lie).
_number('sit stand lie', LOCATION_PREPOSITIONS - {'by'}, 'ARG2')
_number('pour', ('from',), 'ARG2')
# dip.02, transfer.01, attach.01, tie.01, lean.01, hang.01/02.
_number('dip transfer attach tie lean hang', _PLACES + ('against',), 'ARG2')
_number('hang', ('from',), 'ARG2')
_number('combine', ('with',), 'ARG2')
# The target of point.01, aim.02, smile.01, laugh.01, wave.01.
_number('point aim smile laugh wave', _AT + _TO, 'ARG2')
_number('stir coat decorate wrap paint', ('with',), 'ARG2')
_number('spray', _PLACES, 'ARG2')
# Coverings, fillings and second ingredients (garnish.01, top.01, stuff.01,
# load.01, blend.01, salt.01, smear.01; coat.01, cover.02 and wrap.01 with
# "in" too); a tool there is manner (`MATERIAL_WITH_VERBS`).
_number('garnish top stuff load blend salt', ('with',), 'ARG2')
_number('coat cover wrap', ('in',), 'ARG2')
# Surfaces and destinations (apply.02, smear.01, pile.01, connect.01,
# glue.01, fasten.01; squeeze.02's ARG3), recipients (serve.02, return.02).
_number('apply smear', ('on', 'onto', 'to', 'over'), 'ARG2')
_number('pile', ('on', 'onto', 'in', 'into'), 'ARG2')
_number('connect glue fasten', _TO, 'ARG2')
_number('squeeze', ('into', 'onto', 'on', 'over', 'in'), 'ARG3')
_number('serve return', _TO, 'ARG2')
# Results "into ...": dice.01 ARG3; shape.01, divide.02, flip.01 ARG2.
_number('dice', ('into',), 'ARG3')
_number('shape divide flip', ('into',), 'ARG2')
# Hearer and partner (talk.01, speak.01, dance.01): people too.
_number('talk speak dance', ('with',), 'ARG2')
# Prepositional objects (look.01 "at", ask.02 "for", talk.01 "about",
# chew.01 "on", fight.01 "with").
_number('look stare glance gaze', _AT, 'ARG1')
_number('ask', ('for',), 'ARG1')
_number('talk speak', ('about',), 'ARG1')
_number('chew nibble', ('on',), 'ARG1')
_number('fight', ('with',), 'ARG1')
# Verbs whose numbered "with" role is a material, not a tool: "with a
# spoon" (`INSTRUMENT_NOUNS`) stays manner.
MATERIAL_WITH_VERBS = frozenset((
    'mix', 'combine', 'blend', 'coat', 'cover', 'fill', 'season', 'garnish',
    'top', 'stuff', 'load', 'salt', 'decorate', 'wrap', 'paint'))
INSTRUMENT_NOUNS = frozenset((
    'spoon', 'spoons', 'fork', 'forks', 'knife', 'knives', 'whisk',
    'spatula', 'brush', 'brushes', 'hand', 'hands', 'finger', 'fingers',
    'ladle', 'tongs', 'mixer', 'blender', 'machine', 'tool', 'tools',
    'stick', 'sticks', 'chopsticks', 'roller', 'pin', 'peeler', 'grater',
    'scissors', 'masher', 'processor', 'sieve', 'strainer', 'hammer',
    'wrench', 'screwdriver', 'pen', 'pencil', 'sponge'))
# Verbs whose numbered "with" role is a person as often as a thing.
WITH_PEOPLE_VERBS = frozenset(('talk', 'speak', 'dance', 'fight'))
# Verbs whose animate object is the student (teach.01, train.01): ARG2.
# feed.01's eater is ARG2 too, but the synthetic captions (and often SRL
# output) label "feeds the dog" ARG1, so feed keeps the default.
RECIPIENT_OBJECT_VERBS = frozenset(('teach', 'train'))

# Verbs whose subject, without an object, is the thing moving or in a
# position: ARG1 in their PropBank rolesets (sit.01, fall.01, go.01, ...).
UNACCUSATIVE_VERBS = frozenset((
    'sit', 'stand', 'lie', 'lay', 'fall', 'go', 'come', 'float', 'move',
    'roll', 'slide', 'wave', 'gather', 'wake', 'fail', 'become', 'seat',
    'happen', 'swing', 'bounce', 'hang', 'boil', 'simmer', 'melt',
    'thicken', 'dissolve', 'freeze', 'shrink', 'rise', 'bubble', 'sizzle',
    'spill', 'drip'))
# Verbs whose adjective or noun complement is ARG2 (become.01, get.03).
STATE_VERBS = frozenset(('become', 'get', 'turn', 'grow'))
# Objects of "in"/"at"/"on" that make the phrase temporal or manner.
TIME_NOUNS = frozenset((
    'night', 'day', 'morning', 'evening', 'afternoon', 'time', 'christmas',
    'moment', 'end', 'beginning', 'start', 'weekend', 'season', 'summer',
    'winter', 'spring', 'autumn', 'fall'))
# Objects of "for" that make it a duration ("for ten minutes"): ARGM-TMP.
DURATION_NOUNS = frozenset((
    'second', 'seconds', 'sec', 'secs', 'minute', 'minutes', 'min', 'mins',
    'hour', 'hours', 'hr', 'hrs', 'day', 'days', 'week', 'weeks', 'month',
    'months', 'year', 'years', 'while', 'moment', 'moments', 'time', 'ages',
    'night', 'awhile'))
MANNER_NOUNS = frozenset((
    'circle', 'circles', 'half', 'way', 'ways', 'motion', 'unison',
    'style', 'fashion', 'manner', 'turns', 'order'))
# "throws a ball at the lake": a place, not a target.
PLACE_NOUNS = frozenset((
    'lake', 'beach', 'park', 'street', 'kitchen', 'garden', 'field', 'yard',
    'backyard', 'pool', 'room', 'house', 'home', 'stage', 'road', 'gym',
    'school', 'river', 'sea', 'ocean', 'snow', 'store', 'shop', 'restaurant',
    'zoo', 'forest', 'woods', 'office', 'court', 'track', 'party', 'table',
    'bar', 'beach', 'station', 'airport', 'church', 'hospital', 'mall',
    'market', 'farm', 'playground', 'studio', 'desk', 'window', 'door'))
# Containers: "stir in a bowl" is a place, "stir in the cream" a particle.
CONTAINER_NOUNS = frozenset((
    'bowl', 'bowls', 'pot', 'pots', 'pan', 'pans', 'skillet', 'wok', 'tray',
    'dish', 'plate', 'cup', 'glass', 'jar', 'oven', 'blender', 'processor',
    'saucepan', 'mixer', 'sink', 'bucket', 'box', 'bag', 'basket', 'fryer',
    'microwave', 'fridge', 'refrigerator', 'freezer', 'container', 'mold',
    'tin', 'griddle', 'grill', 'bottle', 'can', 'hand', 'hands', 'mouth',
    'car', 'truck', 'boat', 'bed', 'water', 'air', 'front', 'place'))
# Transitive phrasal verbs whose particle is also a preposition: lemma ->
# particles ("takes off his shirt", "pours in the milk", "picks up a
# ball"); after other verbs the preposition heads a phrase ("walks off the
# stage").
PHRASAL_VERBS: Dict[str, Tuple[str, ...]] = {}
for _particle, _verbs in (
    ('off', 'take pull cut wipe peel shave rip tear show knock brush wash '
            'turn switch shake drain scrape trim skim squeeze clean kick'),
    ('on', 'put try turn switch pull slip'),
    ('in', 'stir add mix fold pour throw put toss plug whisk beat drop '
           'sprinkle'),
    ('up', 'pick clean set fill roll wrap cut chop tie lift heat warm mix '
           'break open scoop sweep gather'),
    ('down', 'put set lay knock cut turn write take pull push press'),
    ('out', 'take pull pour scoop roll spread cut lay hand pick squeeze '
            'drain flatten carry bring throw knock blow try point'),
    ('over', 'turn flip knock fold hand'),
    ('away', 'put throw give take wash wipe clear')):
  for _verb in _verbs.split():
    PHRASAL_VERBS[_verb] = PHRASAL_VERBS.get(_verb, ()) + (_particle,)
# Means of communication: "talks on the phone" is manner, not a place.
MEANS_NOUNS = frozenset(('phone', 'telephone', 'cellphone', 'radio',
                         'microphone', 'mic', 'walkie', 'skype', 'webcam'))
# ride.01's steed ("rides on a horse"): ARG1, like "rides a horse".
STEED_NOUNS = frozenset((
    'horse', 'horses', 'bike', 'bicycle', 'motorcycle', 'motorbike',
    'scooter', 'skateboard', 'elephant', 'camel', 'donkey', 'pony',
    'unicycle', 'tricycle', 'surfboard', 'snowboard', 'sled', 'boat',
    'bull', 'ostrich', 'tractor'))
MANNER_ADVERBS = frozenset(('together', 'alone', 'hard', 'fast', 'well'))
TIME_ADVERBS = frozenset(('simultaneously', 'continuously', 'again',
                          'repeatedly', 'constantly', 'now', 'finally'))
# "is seen V-ing": the clause is C-ARG1 of the perception verb.
PERCEPTION_VERBS = frozenset(('see', 'show', 'shown', 'watch', 'hear'))

# Participles that only people and animals do (`participle_clause`).
AGENT_PARTICIPLES = frozenset(('use', 'wear', 'try', 'talk', 'speak',
                                'sing', 'smile', 'laugh', 'explain',
                                'describe', 'demonstrate'))
# Participles of states: their subject is the noun they follow.
STATE_PARTICIPLES = frozenset((
    'contain', 'hold', 'have', 'include', 'show', 'lead', 'cover',
    'surround', 'overlook', 'face', 'say', 'read', 'feature', 'display',
    'run', 'flow', 'involve', 'belong', 'resemble', 'look', 'burn', 'boil',
    'cook', 'fry', 'grow', 'sell', 'spin', 'shine', 'glow', 'lie', 'sit'))
# Verbs that do not share the object of a verb coordinated after them
# ("is singing and playing the guitar").
INTRANSITIVE_VERBS = frozenset((
    'sing', 'dance', 'run', 'walk', 'jump', 'swim', 'talk', 'speak', 'laugh',
    'cry', 'smile', 'sit', 'stand', 'lie', 'fall', 'go', 'come', 'bark',
    'fly', 'sleep', 'fight', 'skate', 'dive', 'crawl', 'climb', 'shout',
    'scream', 'wave', 'nod', 'pose', 'hop', 'march', 'race', 'roll'))

# Verbs of motion: a word after them is a preposition, not a particle
# ("jumps off a table", "slides down the slide").
MOTION_VERBS = INTRANSITIVE_VERBS | UNACCUSATIVE_VERBS | frozenset((
    'slide', 'step', 'get', 'ride', 'swing', 'ski', 'surf', 'sail', 'drive',
    'hike', 'jog', 'sprint', 'skip', 'wander', 'travel', 'float', 'glide'))
