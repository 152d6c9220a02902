"""Tests for the spaCy caption parser and the parse_captions command.

Every expected graph is worked out by hand from the rules in
`caption_parser`'s docstring; nodes are written as (role, word indices) in
the order the graph must list them, edges as (verb, argument) node numbers.
"""

import json
import re
import subprocess
import sys

import pytest

from data_pipelines import caption_parser
from data_pipelines import parse_captions
from data_pipelines import role_graph
from data_pipelines import verb_repair
from tests import test_role_graph
from tests import test_srl_import


@pytest.fixture(scope='module')
def nlp():
  return caption_parser.load_pipeline()


def _check(nlp, sentence, nodes, edges):
  graph = caption_parser.parse_captions([sentence], nlp)[sentence]
  words = sentence.split()
  assert graph[0]['ROOT'] == {'role': 'ROOT', 'words': words,
                              'spans': list(range(len(words)))}
  got = [(n['role'], n['spans']) for k, n in graph[0].items() if k != 'ROOT']
  assert got == [(role, list(spans)) for role, spans in nodes]
  for key, node in graph[0].items():
    assert node['words'] == [words[i] for i in node['spans']], key
  roles = {str(i + 1): role for i, (role, _) in enumerate(nodes)}
  assert graph[1] == [[str(v), str(a), roles[str(a)]] for v, a in edges]
  return graph


def test_active(nlp):
  # a woman slices a tomato
  # 0 1     2      3 4
  _check(nlp, 'a woman slices a tomato',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4])],
         [(1, 2), (1, 3)])


def test_passive_with_agent_and_location(nlp):
  # a tomato is sliced by a woman in the kitchen
  # 0 1      2  3      4  5 6     7  8   9
  _check(nlp, 'a tomato is sliced by a woman in the kitchen',
         [('V', [3]), ('ARG1', [0, 1]), ('ARG0', [4, 5, 6]),
          ('ARGM-LOC', [7, 8, 9])],
         [(1, 2), (1, 3), (1, 4)])


def test_progressive(nlp):
  # "is" is an auxiliary, not a verb node.
  # a man is riding a horse on the beach
  # 0 1   2  3      4 5     6  7   8
  _check(nlp, 'a man is riding a horse on the beach',
         [('V', [3]), ('ARG0', [0, 1]), ('ARG1', [4, 5]),
          ('ARGM-LOC', [6, 7, 8])],
         [(1, 2), (1, 3), (1, 4)])


def test_phrasal_verb(nlp):
  # a boy is picking up a ball
  # 0 1   2  3       4  5 6
  _check(nlp, 'a boy is picking up a ball',
         [('V', [3, 4]), ('ARG0', [0, 1]), ('ARG1', [5, 6])],
         [(1, 2), (1, 3)])


def test_phrasal_verb_particle_parsed_as_preposition(nlp):
  # The object is ARG1, not a direction.
  # a man pulls off a shirt
  # 0 1   2     3   4 5
  _check(nlp, 'a man pulls off a shirt',
         [('V', [2, 3]), ('ARG0', [0, 1]), ('ARG1', [4, 5])],
         [(1, 2), (1, 3)])
  # a woman shows off a plate
  # 0 1     2     3   4 5
  _check(nlp, 'a woman shows off a plate',
         [('V', [2, 3]), ('ARG0', [0, 1]), ('ARG1', [4, 5])],
         [(1, 2), (1, 3)])
  # stir in the cream
  # 0    1  2   3
  _check(nlp, 'stir in the cream', [('V', [0, 1]), ('ARG1', [2, 3])],
         [(1, 2)])
  # Not after a verb without that particle, nor before a container.
  # a man walks off the stage
  # 0 1   2     3   4   5
  _check(nlp, 'a man walks off the stage',
         [('V', [2]), ('ARG0', [0, 1]), ('ARGM-DIR', [3, 4, 5])],
         [(1, 2), (1, 3)])
  # stir in a bowl
  # 0    1  2 3
  _check(nlp, 'stir in a bowl', [('V', [0]), ('ARGM-LOC', [1, 2, 3])],
         [(1, 2)])
  # Parsed as particle and object: after a verb of motion, a direction.
  # a car jumps off a dinning table
  # 0 1   2     3   4 5       6
  _check(nlp, 'a car jumps off a dinning table',
         [('V', [2]), ('ARG0', [0, 1]), ('ARGM-DIR', [3, 4, 5, 6])],
         [(1, 2), (1, 3)])


def test_coordinated_verbs_share_subject_and_object(nlp):
  # One node each for "a man" and "an onion", with an edge to each verb.
  # a man is cutting and slicing an onion
  # 0 1   2  3       4   5       6  7
  _check(nlp, 'a man is cutting and slicing an onion',
         [('V', [3]), ('ARG0', [0, 1]), ('ARG1', [6, 7]), ('V', [5])],
         [(1, 2), (1, 3), (4, 2), (4, 3)])


def test_coordinated_clauses(nlp):
  # "on a table" is where it is put: ARG2 of put.01.
  # a man is picking up a box and putting it on a table
  # 0 1   2  3       4  5 6   7   8       9  10 11 12
  _check(nlp, 'a man is picking up a box and putting it on a table',
         [('V', [3, 4]), ('ARG0', [0, 1]), ('ARG1', [5, 6]), ('V', [8]),
          ('ARG1', [9]), ('ARG2', [10, 11, 12])],
         [(1, 2), (1, 3), (4, 2), (4, 5), (4, 6)])


def test_coordinated_objects_and_instrument(nlp):
  # One span for the coordination, as PropBank; the knife is cut.01's
  # instrument, ARG3.
  # a man is cutting an onion and a tomato with a knife
  # 0 1   2  3       4  5     6   7 8      9    10 11
  _check(nlp, 'a man is cutting an onion and a tomato with a knife',
         [('V', [3]), ('ARG0', [0, 1]), ('ARG1', [4, 5, 6, 7, 8]),
          ('ARG3', [9, 10, 11])],
         [(1, 2), (1, 3), (1, 4)])


def test_dative(nlp):
  # a woman gives the dog a bone
  # 0 1     2     3   4   5 6
  _check(nlp, 'a woman gives the dog a bone',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG2', [3, 4]), ('ARG1', [5, 6])],
         [(1, 2), (1, 3), (1, 4)])


def test_direction_and_companion(nlp):
  # a man is walking into the room with his friend
  # 0 1   2  3       4    5   6    7    8   9
  _check(nlp, 'a man is walking into the room with his friend',
         [('V', [3]), ('ARG0', [0, 1]), ('ARGM-DIR', [4, 5, 6]),
          ('ARGM-COM', [7, 8, 9])],
         [(1, 2), (1, 3), (1, 4)])


def test_temporal_phrase_and_clause(nlp):
  # The hearer of talk.01 is ARG2.
  # a man is talking to a woman after the show
  # 0 1   2  3       4  5 6     7     8   9
  _check(nlp, 'a man is talking to a woman after the show',
         [('V', [3]), ('ARG0', [0, 1]), ('ARG2', [4, 5, 6]),
          ('ARGM-TMP', [7, 8, 9])],
         [(1, 2), (1, 3), (1, 4)])
  # a girl is playing with a small dog while her mother watches
  # 0 1    2  3       4    5 6     7   8     9   10     11
  _check(nlp, 'a girl is playing with a small dog while her mother watches',
         [('V', [3]), ('ARG0', [0, 1]), ('ARGM-COM', [4, 5, 6, 7]),
          ('ARGM-TMP', [8, 9, 10, 11]), ('V', [11]), ('ARG0', [9, 10])],
         [(1, 2), (1, 3), (1, 4), (5, 6)])


def test_participle_modifier(nlp):
  # "a man" is the rider; the whole phrase is the one who smiles.
  # a man riding a horse is smiling
  # 0 1   2      3 4     5  6
  _check(nlp, 'a man riding a horse is smiling',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4]), ('V', [6]),
          ('ARG0', [0, 1, 2, 3, 4])],
         [(1, 2), (1, 3), (4, 5)])


# One hand-worked sentence per rule added for real captions; see
# tests/data/README.md for the conventions, which follow PropBank.


def test_verb_tagged_as_noun_is_repaired(nlp):
  # "stares" and "diving" are tagged as nouns; parsed again with a stand-in
  # verb, the graph keeps the caption's words.
  # a girl in a pool stares straight ahead
  # 0 1    2  3 4    5      6        7
  _check(nlp, 'a girl in a pool stares straight ahead',
         [('V', [5]), ('ARG0', [0, 1, 2, 3, 4])], [(1, 2)])
  # a guy diving into the pool
  # 0 1   2      3    4   5
  _check(nlp, 'a guy diving into the pool',
         [('V', [2]), ('ARG0', [0, 1]), ('ARGM-DIR', [3, 4, 5])],
         [(1, 2), (1, 3)])
  # "snow" was the verb and "cleans" its subject.
  # an individual cleans snow off a car
  # 0  1          2      3    4   5 6
  _check(nlp, 'an individual cleans snow off a car',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3]),
          ('ARGM-DIR', [4, 5, 6])], [(1, 2), (1, 3), (1, 4)])
  # a man is open the door
  # 0 1   2  3    4   5
  _check(nlp, 'a man is open the door',
         [('V', [3]), ('ARG0', [0, 1]), ('ARG1', [4, 5])], [(1, 2), (1, 3)])


def test_verbs_in_coordinations_and_without_auxiliary(nlp):
  # A noun coordinated with a noun is not a verb, even in a verb's form.
  # a man is moving his hands and fingers
  # 0 1   2  3      4   5     6   7
  _check(nlp, 'a man is moving his hands and fingers',
         [('V', [3]), ('ARG0', [0, 1]), ('ARG1', [4, 5, 6, 7])],
         [(1, 2), (1, 3)])
  # A sentence's head noun coordinated with a verb is a verb; fall.01's
  # subject is ARG1.
  # a man skis and falls
  # 0 1   2    3   4
  _check(nlp, 'a man skis and falls',
         [('V', [2]), ('ARG0', [0, 1]), ('V', [4]), ('ARG1', [0, 1])],
         [(1, 2), (3, 4)])
  # the girls spin and twirl around
  # 0   1     2    3   4     5
  _check(nlp, 'the girls spin and twirl around',
         [('V', [2]), ('ARG0', [0, 1]), ('V', [4, 5])], [(1, 2), (3, 2)])
  # A conjunct of the object followed by an object of its own.
  # slice the bread and toast it
  # 0     1   2     3   4     5
  _check(nlp, 'slice the bread and toast it',
         [('V', [0]), ('ARG1', [1, 2]), ('V', [4]), ('ARG1', [5])],
         [(1, 2), (3, 4)])
  # An imperative tagged as a noun; season.01's seasoning is ARG2.
  # season the steak with pepper
  # 0      1   2     3    4
  _check(nlp, 'season the steak with pepper',
         [('V', [0]), ('ARG1', [1, 2]), ('ARG2', [3, 4])], [(1, 2), (1, 3)])
  # jason derula singing in a music video
  # 0     1      2       3  4 5     6
  _check(nlp, 'jason derula singing in a music video',
         [('V', [2]), ('ARG0', [0, 1]), ('ARGM-LOC', [3, 4, 5, 6])],
         [(1, 2), (1, 3)])


def test_imperatives_in_ingredient_lists(nlp):
  # An imperative before a preposition its frameset numbers.
  # season with salt pepper paprika and oregano
  # 0      1    2    3      4       5   6
  _check(nlp, 'season with salt pepper paprika and oregano',
         [('V', [0]), ('ARG2', [1, 2, 3, 4, 5, 6])], [(1, 2)])
  # Parsed as the subject of "lettuce", a base form.
  # place lettuce tomato cheese and bacon on the bun
  # 0     1       2      3      4   5     6  7   8
  _check(nlp, 'place lettuce tomato cheese and bacon on the bun',
         [('V', [0]), ('ARG1', [1, 2, 3, 4, 5]), ('ARG2', [6, 7, 8])],
         [(1, 2), (1, 3)])
  # The last "and simmer" is a verb without arguments, not an ingredient.
  # add the beef broth wine and herbs and simmer
  # 0   1   2    3     4    5   6     7   8
  _check(nlp, 'add the beef broth wine and herbs and simmer',
         [('V', [0]), ('ARG1', [1, 2, 3, 4, 5, 6])], [(1, 2)])
  # simmer.01's subject is the thing simmering: ARG1.
  # add water and let it simmer for ten minutes
  # 0   1     2   3   4  5      6   7   8
  _check(nlp, 'add water and let it simmer for ten minutes',
         [('V', [0]), ('ARG1', [1]), ('V', [3]), ('ARG1', [4, 5, 6, 7, 8]),
          ('V', [5]), ('ARG1', [4]), ('ARGM-TMP', [6, 7, 8])],
         [(1, 2), (3, 4), (5, 6), (5, 7)])


def test_misparsed_verbs_found_by_form_and_position(nlp):
  doc = next(caption_parser.parse_words(nlp, [
      'a guy diving into the pool'.split()]))
  assert verb_repair.misparsed_verbs(doc) == {2: 'VBG'}
  assert verb_repair.verb_form_tag('diving') == 'VBG'
  assert verb_repair.verb_form_tag('stares') == 'VBZ'
  assert verb_repair.verb_form_tag('runing') is None  # A typo.


def test_subject_of_headline_verb_is_the_whole_noun_phrase(nlp):
  # Not "microphones": "sing" is the main verb.
  # two young men with microphones sing on stage
  # 0   1     2   3    4           5    6  7
  _check(nlp, 'two young men with microphones sing on stage',
         [('V', [5]), ('ARG0', [0, 1, 2, 3, 4]), ('ARGM-LOC', [6, 7])],
         [(1, 2), (1, 3)])


def test_participle_after_clothing_describes_the_wearer(nlp):
  # Parsed with "black" modifying "playing", the object of "in".
  # a woman in black playing a guitar
  # 0 1     2  3     4       5 6
  _check(nlp, 'a woman in black playing a guitar',
         [('V', [4]), ('ARG0', [0, 1, 2, 3]), ('ARG1', [5, 6])],
         [(1, 2), (1, 3)])


def test_participle_after_a_place_describes_the_subject(nlp):
  # Not "a church".
  # people are in a church waving white handkerchiefs while cheering
  # 0      1   2  3 4      5      6     7             8     9
  graph = caption_parser.parse_captions(
      ['people are in a church waving white handkerchiefs while cheering'],
      nlp).popitem()[1]
  nodes = graph[0]
  assert [(nodes[v]['words'], role, nodes[a]['spans'])
          for v, a, role in graph[1] if role == 'ARG0'] == [
              (['waving'], 'ARG0', [0])]


def test_participle_on_a_place_or_thing_describes_the_subject(nlp):
  # "preparing" is parsed as modifying "gymnasium".
  # a girl is seen inside of a gymnasium preparing to jump
  # 0 1    2  3    4      5  6 7         8         9  10
  _check(nlp, 'a girl is seen inside of a gymnasium preparing to jump',
         [('V', [3]), ('ARG1', [0, 1]), ('ARGM-LOC', [4, 5, 6, 7]),
          ('C-ARG1', [8, 9, 10]), ('V', [8]), ('ARG0', [0, 1]),
          ('ARG1', [9, 10]), ('V', [10])],
         [(1, 2), (1, 3), (1, 4), (5, 6), (5, 7), (8, 6)])
  # a man sharpens a pencil using a knife
  # 0 1   2        3 4      5     6 7
  _check(nlp, 'a man sharpens a pencil using a knife',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4]),
          ('ARGM-ADV', [5, 6, 7]), ('V', [5]), ('ARG1', [6, 7])],
         [(1, 2), (1, 3), (1, 4), (5, 2), (5, 6)])
  # A posture verb describes the place.
  # a boy plays at a tree lying in the street
  # 0 1   2     3  4 5    6     7  8   9
  _check(nlp, 'a boy plays at a tree lying in the street',
         [('V', [2]), ('ARG0', [0, 1]), ('ARGM-LOC', [3, 4, 5, 6, 7, 8, 9]),
          ('V', [6]), ('ARG1', [4, 5]), ('ARG2', [7, 8, 9])],
         [(1, 2), (1, 3), (4, 5), (4, 6)])


def test_by_is_the_agent_only_after_a_passive(nlp):
  # a man walks by a woman and lifts her dress
  # 0 1   2     3  4 5     6   7     8   9
  _check(nlp, 'a man walks by a woman and lifts her dress',
         [('V', [2]), ('ARG0', [0, 1]), ('ARGM-LOC', [3, 4, 5]), ('V', [7]),
          ('ARG1', [8, 9])], [(1, 2), (1, 3), (4, 2), (4, 5)])


def test_numbered_prepositional_arguments(nlp):
  # give.01 recipient and put.01 destination: ARG2.
  # a man gives a ball to a dog
  # 0 1   2     3 4    5  6 7
  _check(nlp, 'a man gives a ball to a dog',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4]), ('ARG2', [5, 6, 7])],
         [(1, 2), (1, 3), (1, 4)])
  # a woman puts a pan into the oven
  # 0 1     2    3 4   5    6   7
  _check(nlp, 'a woman puts a pan into the oven',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4]), ('ARG2', [5, 6, 7])],
         [(1, 2), (1, 3), (1, 4)])
  # "throws ... at the lake": a place, not a target.
  # a boy throws a ball at the lake
  # 0 1   2      3 4    5  6   7
  _check(nlp, 'a boy throws a ball at the lake',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4]),
          ('ARGM-LOC', [5, 6, 7])], [(1, 2), (1, 3), (1, 4)])


def test_numbered_roles_of_coverings_results_and_tools(nlp):
  # garnish.01: the garnish is ARG2.
  # a chef garnishes the plate with mint leaves
  # 0 1    2         3   4     5    6    7
  _check(nlp, 'a chef garnishes the plate with mint leaves',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4]),
          ('ARG2', [5, 6, 7])], [(1, 2), (1, 3), (1, 4)])
  # mix.01's ARG2 is a second ingredient; a spoon is a tool: manner.
  # a man mixes the dough with a spoon
  # 0 1   2     3   4     5    6 7
  _check(nlp, 'a man mixes the dough with a spoon',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4]),
          ('ARGM-MNR', [5, 6, 7])], [(1, 2), (1, 3), (1, 4)])
  # wrap.01's wrapper, dice.01's result.
  # a woman wraps the burrito in foil
  # 0 1     2     3   4       5  6
  _check(nlp, 'a woman wraps the burrito in foil',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4]), ('ARG2', [5, 6])],
         [(1, 2), (1, 3), (1, 4)])
  # a man dices the onion into small cubes
  # 0 1   2     3   4     5    6     7
  _check(nlp, 'a man dices the onion into small cubes',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4]),
          ('ARG3', [5, 6, 7])], [(1, 2), (1, 3), (1, 4)])


def test_unaccusative_subject_and_posture_location(nlp):
  # sit.01: the sitter is ARG1, the place ARG2.
  # a cat sits on a chair
  # 0 1   2    3  4 5
  _check(nlp, 'a cat sits on a chair',
         [('V', [2]), ('ARG1', [0, 1]), ('ARG2', [3, 4, 5])], [(1, 2), (1, 3)])
  # The runner is ARG0, the one falling ARG1: two nodes on the same span.
  # a dog is running and falls
  # 0 1   2  3       4   5
  _check(nlp, 'a dog is running and falls',
         [('V', [3]), ('ARG0', [0, 1]), ('V', [5]), ('ARG1', [0, 1])],
         [(1, 2), (3, 4)])


def test_seen_doing_is_split_and_shares_the_subject(nlp):
  # a woman is seen cutting a cake
  # 0 1     2  3    4       5 6
  _check(nlp, 'a woman is seen cutting a cake',
         [('V', [3]), ('ARG1', [0, 1]), ('C-ARG1', [4, 5, 6]), ('V', [4]),
          ('ARG0', [0, 1]), ('ARG1', [5, 6])],
         [(1, 2), (1, 3), (4, 5), (4, 6)])


def test_while_clause_verb_shares_the_subject(nlp):
  # "on the phone" is the means of talking: ARGM-MNR, not a place.
  # a woman is walking while talking on the phone
  # 0 1     2  3       4     5       6  7   8
  _check(nlp, 'a woman is walking while talking on the phone',
         [('V', [3]), ('ARG0', [0, 1]), ('ARGM-TMP', [4, 5, 6, 7, 8]),
          ('V', [5]), ('ARGM-MNR', [6, 7, 8])],
         [(1, 2), (1, 3), (4, 2), (4, 5)])


def test_object_control_and_relative_pronoun(nlp):
  # train.01: the trainee is ARG2 and the one who jumps.
  # a man trains a dog to jump
  # 0 1   2      3 4   5  6
  _check(nlp, 'a man trains a dog to jump',
         [('V', [2]), ('ARG0', [0, 1]), ('ARG2', [3, 4]), ('ARG1', [5, 6]),
          ('V', [6]), ('ARG0', [3, 4])], [(1, 2), (1, 3), (1, 4), (5, 6)])
  # a man who is running
  # 0 1   2   3  4
  _check(nlp, 'a man who is running',
         [('V', [4]), ('ARG0', [0, 1]), ('R-ARG0', [2])], [(1, 2), (1, 3)])


def test_object_relative_clauses(nlp):
  # Parsed as a complement of "talking" with "that" as its object: the
  # clause belongs to "food", cook's ARG1 (PropBank: R-ARG1 "that").
  # a chef is talking about food that they can cook
  # 0 1    2  3       4     5    6    7    8   9
  _check(nlp, 'a chef is talking about food that they can cook',
         [('V', [3]), ('ARG0', [0, 1]), ('ARG1', [4, 5, 6, 7, 8, 9]),
          ('V', [9]), ('ARG1', [5]), ('R-ARG1', [6]), ('ARG0', [7]),
          ('ARGM-MOD', [8])],
         [(1, 2), (1, 3), (4, 5), (4, 6), (4, 7), (4, 8)])
  # "that" parsed as a second subject of "feeds".
  # the dog that the boy feeds is barking
  # 0   1   2    3   4   5     6  7
  _check(nlp, 'the dog that the boy feeds is barking',
         [('V', [5]), ('ARG1', [0, 1]), ('R-ARG1', [2]), ('ARG0', [3, 4]),
          ('V', [7]), ('ARG0', [0, 1, 2, 3, 4, 5])],
         [(1, 2), (1, 3), (1, 4), (5, 6)])


def test_intransitive_verb_does_not_share_the_next_object(nlp):
  # a boy is singing and playing the guitar
  # 0 1   2  3       4   5       6   7
  _check(nlp, 'a boy is singing and playing the guitar',
         [('V', [3]), ('ARG0', [0, 1]), ('V', [5]), ('ARG1', [6, 7])],
         [(1, 2), (3, 2), (3, 4)])


def test_duration_is_temporal(nlp):
  # for.01-less "for": a duration is ARGM-TMP, a beneficiary ARGM-PRP.
  # a man sleeps for two hours
  # 0 1   2      3   4   5
  _check(nlp, 'a man sleeps for two hours',
         [('V', [2]), ('ARG0', [0, 1]), ('ARGM-TMP', [3, 4, 5])],
         [(1, 2), (1, 3)])
  # the dancer performed for the king
  # 0   1      2         3   4   5
  _check(nlp, 'the dancer performed for the king',
         [('V', [2]), ('ARG0', [0, 1]), ('ARGM-PRP', [3, 4, 5])],
         [(1, 2), (1, 3)])


def test_time_and_manner_phrases(nlp):
  # a man is cooking at night
  # 0 1   2  3       4  5
  _check(nlp, 'a man is cooking at night',
         [('V', [3]), ('ARG0', [0, 1]), ('ARGM-TMP', [4, 5])], [(1, 2), (1, 3)])
  # a girl is dancing in circles
  # 0 1    2  3       4  5
  _check(nlp, 'a girl is dancing in circles',
         [('V', [3]), ('ARG0', [0, 1]), ('ARGM-MNR', [4, 5])], [(1, 2), (1, 3)])


def test_split_last_conjunct(nlp):
  doc = next(caption_parser.parse_words(nlp, [
      'a man catches a dog and a bird'.split()]))
  # a man catches a dog and a bird
  # 0 1   2       3 4   5   6 7
  assert caption_parser.split_last_conjunct(doc, (3, 4, 5, 6, 7)) == (
      (3, 4), (6, 7))


def test_no_verb_gets_noun_chunks(nlp):
  # a man with a hat
  # 0 1   2    3 4
  _check(nlp, 'a man with a hat', [('NOUN', [0, 1]), ('NOUN', [3, 4])], [])


def test_copula_only_sentence_is_augmented_like_the_release(nlp):
  # No content verb: noun chunks, then every VB* word (here the copula), as
  # the official augmentation does.
  # a man is on a skateboard
  # 0 1   2  3  4 5
  _check(nlp, 'a man is on a skateboard',
         [('NOUN', [0, 1]), ('NOUN', [4, 5]), ('V', [2])], [])


LONG_SENTENCE = (
    'a man in a red shirt is slicing a tomato on a wooden board with a sharp '
    'knife while a woman standing next to him is pouring water into a big '
    'pot and a little boy is playing with a small dog in the corner of the '
    'kitchen')


def test_very_long_sentence(nlp):
  # a man in a red shirt is slicing a  tomato on a  wooden board with a
  # 0 1   2  3 4   5     6  7       8  9      10 11 12     13    14   15
  # sharp knife while a  woman standing next to him is pouring water into
  # 16    17    18    19 20    21       22   23 24  25 26      27    28
  # a  big pot and a  little boy is playing with a  small dog in the
  # 29 30  31  32  33 34     35  36 37      38   39 40    41  42 43
  # corner of the kitchen
  # 44     45 46  47
  # The while-clause holds the two coordinated clauses after it. The one
  # standing is ARG1 (stand.01), the pot ARG3 (pour.01's destination).
  graph = _check(
      nlp, LONG_SENTENCE,
      [('V', [7]), ('ARG0', [0, 1, 2, 3, 4, 5]), ('ARG1', [8, 9]),
       ('ARGM-LOC', [10, 11, 12, 13]), ('ARGM-MNR', [14, 15, 16, 17]),
       ('ARGM-TMP', list(range(18, 48))),
       ('V', [21]), ('ARG1', [19, 20]), ('ARGM-LOC', [22, 23, 24]),
       ('V', [26]), ('ARG0', [19, 20, 21, 22, 23, 24]), ('ARG1', [27]),
       ('ARG3', [28, 29, 30, 31]),
       ('V', [37]), ('ARG0', [33, 34, 35]), ('ARGM-COM', [38, 39, 40, 41]),
       ('ARGM-LOC', [42, 43, 44, 45, 46, 47])],
      [(1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (7, 8), (7, 9), (10, 11),
       (10, 12), (10, 13), (14, 15), (14, 16), (14, 17)])
  # With the release's sizes only the first 4 verbs and 6 arguments are
  # kept, the way the official reader truncates.
  out = role_graph.encode_graph(graph, max_words=30, num_verbs=4,
                                num_nouns=6)
  assert out['verb_masks'].sum(axis=1).tolist() == [1, 1, 1, 0]
  assert out['noun_masks'].sum(axis=1).tolist() == [6, 2, 4, 4, 12, 2]


def test_duplicates_parsed_once_and_order_kept(nlp):
  sentences = ['a dog runs', 'a cat sleeps', 'a dog runs']
  graphs = caption_parser.parse_captions(sentences, nlp, batch_size=1)
  assert list(graphs) == ['a dog runs', 'a cat sleeps']


def _run(*args, check=True):
  return subprocess.run(
      [sys.executable, '-m', 'data_pipelines.parse_captions', *args],
      capture_output=True, text=True, check=check)


# Runs parse_captions with TensorFlow and JAX made unimportable: the light
# install (requirements-parse.txt) has neither.
_WITHOUT_TRAINING_STACK = """
import runpy, sys
class Blocker:
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in ('tensorflow', 'jax', 'jaxlib', 'flax'):
      raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Blocker())
sys.argv = ['parse_captions'] + sys.argv[1:]
runpy.run_module('data_pipelines.parse_captions', run_name='__main__')
"""


def _write(path, data):
  return _write_text(path, json.dumps(data))


def _write_text(path, text):
  path.write_text(text)
  return str(path)


def test_command_parses_captions(tmp_path):
  captions = _write(tmp_path / 'ref_captions.json', {
      'video1': ['a woman slices a tomato', 'a man with a hat'],
      'video2': ['a woman slices a tomato']})
  out = str(tmp_path / 'sent2rolegraph.augment.json')
  _run(f'--captions={captions}', f'--out={out}')
  with open(out) as f:
    graphs = json.load(f)
  assert list(graphs) == ['a woman slices a tomato', 'a man with a hat']
  assert graphs['a woman slices a tomato'][1] == [['1', '2', 'ARG0'],
                                                  ['1', '3', 'ARG1']]


def test_command_normalises_skips_empty_and_summarises(tmp_path):
  captions = _write(tmp_path / 'ref_captions.json', {
      'video1': ['A Man Is Running.', '  ', 'a man is running'],
      'video2': ['a dog', '']})
  out = str(tmp_path / 'graphs.json')
  result = subprocess.run(
      [sys.executable, '-c', _WITHOUT_TRAINING_STACK,
       f'--captions={captions}', f'--out={out}'],
      capture_output=True, text=True, check=True)
  with open(out) as f:
    graphs = json.load(f)
  # Keyed by the normalised caption; the empty ones are not graphs.
  assert list(graphs) == ['a man is running', 'a dog']
  assert graphs['a man is running'][1] == [['1', '2', 'ARG0']]
  assert '2 sentences (2 empty captions skipped); 1 (50.0%) without any ' \
         'frame' in result.stdout
  assert '0 of 1 framed verbs without a subject' in result.stdout
  # V, ARG0 and the NOUN of "a dog": a third each.
  assert 'V 33.3% / 33.4%, ARG1 0.0% / 22.0%, ARG0 33.3% / 21.1%' in (
      result.stdout)


def test_no_normalise_keeps_captions():
  assert caption_parser.caption_sentences(
      ['A  Man.', 'a man', ' '], normalise=False) == (
          {'A Man.': ['A Man.'], 'a man': ['a man']}, 1)
  assert caption_parser.caption_sentences(
      ['A  Man.', 'a man', ' ']) == ({'a man': ['a man']}, 1)


@pytest.mark.parametrize('make_input, message', [
    (lambda d: str(d / 'absent.json'), r'absent.json: no such file'),
    (lambda d: _write_text(d / 'bad.json', '{"v": ['),
     r'bad.json is not valid JSON \(.*line 1'),
    (lambda d: _write(d / 'list.json', ['a dog']),
     'must map each video id to a list of caption strings'),
])
def test_command_bad_input_is_one_line(tmp_path, make_input, message):
  result = _run(f'--captions={make_input(tmp_path)}',
                f'--out={tmp_path / "out.json"}', check=False)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and 'Traceback' not in result.stderr
  assert re.search('parse_captions: .*' + message, lines[0])


def test_unwritable_output_fails_before_parsing(tmp_path):
  captions = _write(tmp_path / 'ref_captions.json', {'v': ['a dog runs']})
  for out, message in ((tmp_path / 'no_such_folder' / 'g.json',
                        'does not exist; create it first'),
                       (tmp_path, 'is a folder')):
    result = _run(f'--captions={captions}', f'--out={out}',
                  '--no_normalise', check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert 'Parsed' not in result.stderr  # Nothing was parsed.


def test_command_imports_srl_and_parses_the_rest(tmp_path):
  sentence = test_role_graph.OFFICIAL_SENTENCE
  # A malformed prediction (tag "X-V") is listed and parsed instead.
  malformed = {'words': ['a', 'dog', 'runs'],
               'verbs': [{'verb': 'runs', 'tags': ['B-ARG0', 'I-ARG0',
                                                   'X-V']}]}
  srl = _write(tmp_path / 'sent2srl.json',
               {sentence: test_srl_import.OFFICIAL_SRL,
                'a cat': {'words': ['a', 'cat'], 'verbs': []},
                'a dog runs': malformed})
  captions = _write(tmp_path / 'ref_captions.json',
                    {'v': [sentence, 'a woman slices a tomato',
                           'a dog runs']})
  out = str(tmp_path / 'graphs.json')
  result = _run(f'--srl={srl}', f'--captions={captions}', f'--out={out}')
  assert '2 of 3 sentences have no SRL output' in result.stderr
  assert ('0 sentences got a fallback graph (noun chunks and verbs) because '
          'a rule raised; 1 SRL predictions could not be converted (parsed '
          'instead)') in result.stdout
  with open(tmp_path / 'graphs.failures.jsonl') as f:
    assert [json.loads(line) for line in f] == [{
        'sentence': 'a dog runs',
        'error': "SRL output: ValueError: Tag 'X-V' at word 2 is not O, "
                 "B-* or I-*."}]
  with open(out) as f:
    graphs = json.load(f)
  assert graphs['a dog runs'][1] == [['1', '2', 'ARG0']]
  assert graphs[sentence] == json.loads(json.dumps(
      test_role_graph.OFFICIAL_GRAPH))
  # No frame in the SRL output: noun chunk augmentation.
  assert graphs['a cat'][0]['1'] == {'role': 'NOUN', 'spans': [0, 1],
                                     'words': ['a', 'cat']}
  assert graphs['a woman slices a tomato'][1] == [['1', '2', 'ARG0'],
                                                  ['1', '3', 'ARG1']]


@pytest.mark.parametrize('content, message', [
    ({'v': 'a dog runs'}, 'list of caption strings'),
    (['a dog runs'], 'list of caption strings'),
])
def test_bad_captions_file(tmp_path, content, message):
  path = _write(tmp_path / 'ref_captions.json', content)
  with pytest.raises(ValueError, match=message):
    parse_captions.read_captions(path)


def test_bad_srl_file(tmp_path):
  path = _write(tmp_path / 'sent2srl.json', {'a dog runs': {'words': []}})
  with pytest.raises(ValueError, match="entry for 'a dog runs'"):
    parse_captions.read_srl(path)


def test_missing_model_names_the_fix():
  with pytest.raises(OSError, match=r"pip install -e '\.\[parse\]'"):
    caption_parser.load_pipeline('no_such_spacy_model')
