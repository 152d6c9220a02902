"""No caption stops a parse: isolation, fallback graphs, fuzzing, real corpora.

The fuzzing composes captions from the constructions that broke the rules on
unseen corpora (coordinated verbs and prepositional phrases, participle and
relative clauses, passives, phrasal verbs, verbless captions, imperatives,
typos) and checks every graph against the release format independently of
the code that builds it.
"""

import json
import os
import subprocess
import sys

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from data_pipelines import caption_parser
from data_pipelines import caption_text
from data_pipelines import parse_captions
from data_pipelines import role_graph
from data_pipelines import srl_import
from data_pipelines import write_annotations

_MSVD = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                     'msvd_captions')
# Roles AllenNLP's SRL and the parser produce; R-/C- prefixes are allowed on
# the numbered ones.
_ROLES = set(role_graph.ROLES) | {'ARGM-DIS', 'ARGM-GOL', 'ARGM-EXT',
                                  'ARGM-CAU', 'ARGM-NEG', 'ARGM-PNC'}


@pytest.fixture(scope='module')
def nlp():
  return caption_parser.load_pipeline()


def assert_release_graph(sentence, graph, paragraph=False):
  """Checks `graph` against the format of sent2rolegraph.augment.json.

  The graph of a paragraph may mix framed sentences with augmented ones.
  """
  words = sentence.split()
  nodes, edges = json.loads(json.dumps(graph))  # Plain JSON, as written.
  keys = list(nodes)
  assert keys == ['ROOT'] + [str(i) for i in range(1, len(keys))], keys
  assert nodes['ROOT'] == dict(role='ROOT', spans=list(range(len(words))),
                               words=words)
  for key in keys[1:]:
    node = nodes[key]
    assert set(node) == {'role', 'spans', 'words'}, node
    role = node['role']
    assert role in _ROLES or role[2:] in _ROLES and role[:2] in ('R-', 'C-'), (
        role)
    assert node['spans'] and node['spans'] == sorted(set(node['spans']))
    assert 0 <= node['spans'][0] and node['spans'][-1] < len(words)
    assert node['words'] == [words[i] for i in node['spans']]
  # Nodes are distinct (spans, role) pairs; a V node has edges, or the
  # sentence has none (augmentation).
  assert len({(n['role'], tuple(n['spans'])) for k, n in nodes.items()
              if k != 'ROOT'}) == len(keys) - 1
  for verb, argument, role in edges:
    assert nodes[verb]['role'] == 'V' and argument not in ('ROOT', verb)
    assert nodes[argument]['role'] == role
  assert len(edges) == len({tuple(e) for e in edges})
  if edges and not paragraph:
    framed = {v for v, _, _ in edges} | {a for _, a, _ in edges}
    assert framed == set(keys[1:])
  # The official reader takes it.
  role_graph.encode_graph(graph, max_words=max(1, len(words)), num_verbs=4,
                          num_nouns=6)


def _parse(nlp, sentences):
  failures = {}
  graphs = caption_parser.parse_captions(sentences, nlp, failures=failures,
                                         log_every=10**9)
  return graphs, failures


@pytest.mark.parametrize('sentence, verb, arguments', [
    ('a man walks on the road and in the park while talking', 'walks',
     [('ARG0', 'a man'), ('ARGM-LOC', 'on the road'),
      ('ARGM-LOC', 'in the park'), ('ARGM-TMP', 'while talking')]),
    ('she then puts it into the tray and into the oven to bake', 'puts',
     [('ARG0', 'she'), ('ARG1', 'it'), ('ARG2', 'into the tray'),
      ('ARG2', 'into the oven')]),
])
def test_coordinated_prepositional_phrases_before_a_clause(
    nlp, sentence, verb, arguments):
  # Both raised "max() arg is an empty sequence" in split_last_conjunct: the
  # second phrase was taken for a noun coordination holding the clause's
  # subject.
  graphs, failures = _parse(nlp, [sentence])
  assert not failures
  nodes, edges = graphs[sentence]
  got = [(role, ' '.join(nodes[a]['words'])) for v, a, role in edges
         if nodes[v]['words'] == [verb]]
  assert set(arguments) <= set(got), got


def test_split_last_conjunct_of_prepositional_phrases(nlp):
  doc = next(caption_parser.parse_words(nlp, [
      'a man walks on the road and in the park'.split()]))
  # No noun coordination in "in the park": nothing to split off.
  assert caption_parser.split_last_conjunct(doc, (7, 8, 9)) == ((7, 8, 9), ())


def test_a_sentence_whose_rules_raise_gets_a_fallback_graph(nlp, monkeypatch):
  frames = caption_parser.sentence_frames

  def broken(doc):
    if 'zebra' in doc.text:
      raise KeyError('a rule failed')
    return frames(doc)

  monkeypatch.setattr(caption_parser, 'sentence_frames', broken)
  sentences = ['a dog runs', 'a zebra eats grass', 'a cat sleeps']
  graphs, failures = _parse(nlp, sentences)
  assert failures == {'a zebra eats grass': "KeyError: 'a rule failed'"}
  assert graphs['a dog runs'][1] == [['1', '2', 'ARG0']]
  # The release's augmentation: noun chunks, then the verb, no edges.
  nodes, edges = graphs['a zebra eats grass']
  assert [(n['role'], n['words']) for k, n in nodes.items() if k != 'ROOT'
         ] == [('NOUN', ['a', 'zebra']), ('NOUN', ['grass']),
               ('V', ['eats'])]
  assert edges == []
  assert_release_graph('a zebra eats grass', graphs['a zebra eats grass'])


def test_a_sentence_spacy_cannot_parse_gets_its_sentence_node(
    nlp, monkeypatch):
  parse_words = caption_parser.parse_words

  def broken(nlp, sentences, batch_size=256):
    if any('zebra' in words for words in sentences):
      raise ValueError('cannot parse')
    return parse_words(nlp, sentences, batch_size)

  monkeypatch.setattr(caption_parser, 'parse_words', broken)
  graphs, failures = _parse(nlp, ['a dog runs', 'a zebra', 'a cat sleeps'])
  assert failures == {'a zebra': 'ValueError: cannot parse'}
  assert graphs['a zebra'] == srl_import.root_graph(['a', 'zebra'])
  assert graphs['a cat sleeps'][1] == [['1', '2', 'ARG0']]


# Runs parse_captions with sentence_frames raising on "zebra".
_WITH_A_BROKEN_RULE = """
import runpy, sys
from data_pipelines import caption_parser
frames = caption_parser.sentence_frames
def broken(doc):
  if 'zebra' in doc.text:
    raise IndexError('list index out of range')
  return frames(doc)
caption_parser.sentence_frames = broken
sys.argv = ['parse_captions'] + sys.argv[1:]
runpy.run_module('data_pipelines.parse_captions', run_name='__main__')
"""


def _run(*args, code=None):
  command = ['-c', code, *args] if code else [
      '-m', 'data_pipelines.parse_captions', *args]
  return subprocess.run([sys.executable, *command], capture_output=True,
                        text=True, check=False)


def test_command_writes_failures_and_exits_0(tmp_path):
  captions = tmp_path / 'ref_captions.json'
  captions.write_text(json.dumps({'v1': ['A zebra eats grass.', 'a dog runs'],
                                  'v2': ['A man walks in. A zebra sits.']}))
  out = tmp_path / 'graphs.json'
  result = _run(f'--captions={captions}', f'--out={out}',
                code=_WITH_A_BROKEN_RULE)
  assert result.returncode == 0, result.stderr
  graphs = json.loads(out.read_text())
  # The paragraph is split at its full stop and keyed as normalised.
  assert list(graphs) == ['a zebra eats grass', 'a dog runs',
                          'a man walks in a zebra sits']
  for sentence, graph in graphs.items():
    assert_release_graph(sentence, graph, paragraph=True)
  failures = [json.loads(line) for line in
              (tmp_path / 'graphs.failures.jsonl').read_text().splitlines()]
  assert failures == [
      {'sentence': 'a zebra eats grass',
       'error': 'IndexError: list index out of range'},
      {'sentence': 'a zebra sits',
       'error': 'IndexError: list index out of range'}]
  assert '2 sentences got a fallback graph' in result.stdout
  # The first sentence of the paragraph keeps its frame.
  nodes, edges = graphs['a man walks in a zebra sits']
  assert [nodes[a]['words'] for _, a, _ in edges] == [['a', 'man']]


def test_paragraph_graph_is_the_union_of_its_sentences(nlp):
  paragraphs, empty = caption_parser.caption_sentences(
      ['A dog runs. A cat sleeps!', 'a dog runs', '...', ' '])
  assert paragraphs == {'a dog runs a cat sleeps': ['a dog runs',
                                                    'a cat sleeps'],
                        'a dog runs': ['a dog runs']}
  assert empty == 2
  graphs, _ = _parse(nlp, ['a dog runs', 'a cat sleeps'])
  joined = caption_parser.paragraph_graphs(paragraphs, graphs)
  # a dog runs a cat sleeps
  # 0 1   2    3 4   5
  nodes, edges = joined['a dog runs a cat sleeps']
  assert [(n['role'], n['spans']) for k, n in nodes.items() if k != 'ROOT'
         ] == [('V', [2]), ('ARG0', [0, 1]), ('V', [5]), ('ARG0', [3, 4])]
  assert edges == [['1', '2', 'ARG0'], ['3', '4', 'ARG0']]
  assert_release_graph('a dog runs a cat sleeps', joined[
      'a dog runs a cat sleeps'])


def test_release_writer_splits_paragraphs_too(nlp, tmp_path):
  captions = {'v1': ['A man walks in. He sits down.'], 'v2': ['a dog runs']}
  splits = {'train': ['v1'], 'validation': ['v2'], 'test': ['v2']}
  graphs = write_annotations.write(captions, splits, str(tmp_path), nlp=nlp)
  assert set(graphs) == {'a man walks in he sits down', 'a dog runs'}
  nodes, edges = graphs['a man walks in he sits down']
  # a man walks in he sits down
  # 0 1   2     3  4  5    6
  assert [(nodes[v]['spans'], nodes[a]['spans']) for v, a, _ in edges] == [
      ([2, 3], [0, 1]), ([5, 6], [4])]


def test_no_normalise_warns_on_punctuation(caplog):
  parse_captions.warn_punctuation(['A man skis, then falls.', 'a dog runs'])
  assert ("--no_normalise: 1 of 2 captions hold punctuation (first: 'A man "
          "skis, then falls.')") in caplog.text
  assert 'stays part of its word' in caplog.text
  caplog.clear()
  parse_captions.warn_punctuation(['A Man runs', 'a dog runs'])
  assert not caplog.text
  # The captions are kept as written, split at full stops only.
  assert caption_parser.caption_sentences(
      ['A man skis, then falls. He smiles'], normalise=False) == (
          {'A man skis, then falls. He smiles': ['A man skis, then falls.',
                                                 'He smiles']}, 0)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from('aB .!?,\'-"'), max_size=30))
def test_sentences_of_a_caption_join_to_its_normalised_form(caption):
  paragraphs, empty = caption_parser.caption_sentences([caption])
  if caption_text.normalise(caption):
    assert list(paragraphs) == [caption_text.normalise(caption)]
  else:
    assert empty == 1
  assert ' '.join(caption_text.split_sentences(caption)) == ' '.join(
      caption.split())


# Caption grammar for fuzzing: the constructions of issue 28's error classes.
_NOUNS = ['man', 'woman', 'dog', 'zombie', 'plate', 'shirt', 'hands',
          'fingers', 'legs', 'arms', 'food', 'gymnasium', 'pottery', 'road',
          'park', 'tray', 'oven', 'onion', 'pan', 'room', 'music video',
          'bowl', 'sauce', 'guitar', 'ball', 'water']
_DETERMINERS = ['a', 'the', 'two', 'his', 'some', '']
_VERBS = ['walks', 'skis', 'falls', 'spins', 'twirls', 'cooks', 'cuts',
          'plays', 'sings', 'adds', 'pours', 'sneaks', 'moves', 'keeps',
          'talks', 'prepares', 'uses', 'shows', 'pulls', 'puts', 'stirs']
_PARTICIPLES = ['walking', 'skiing', 'moving', 'singing', 'preparing',
                'using', 'doing', 'playing', 'cutting', 'talking', 'seen',
                'cooked', 'placed', 'shown']
_BASES = ['add', 'stir', 'cut', 'pour', 'mix', 'place', 'cook', 'spin',
          'twirl', 'keep', 'roll', 'fry']
_PREPOSITIONS = ['on', 'in', 'into', 'with', 'through', 'about', 'inside of',
                 'to', 'off', 'by', 'while', 'and']
_PARTICLES = ['off', 'up', 'out', 'down', 'around', 'apart']


@st.composite
def _noun_phrase(draw):
  phrase = ' '.join(w for w in (draw(st.sampled_from(_DETERMINERS)),
                                draw(st.sampled_from(_NOUNS))) if w)
  if draw(st.booleans()):
    phrase += ' and ' + draw(st.sampled_from(_NOUNS))
  return phrase


@st.composite
def _pp(draw):
  pp = draw(st.sampled_from(_PREPOSITIONS)) + ' ' + draw(_noun_phrase())
  if draw(st.integers(0, 3)) == 0:  # "on the road and in the park"
    pp += ' and ' + draw(st.sampled_from(_PREPOSITIONS)) + ' ' + draw(
        _noun_phrase())
  return pp


# Caption shapes, one letter per part drawn anew: S subject and N noun
# phrase, V verb, P participle, B bare verb, R prepositional phrase (maybe
# coordinated: "on the road and in the park"), T particle; other words stay.
_SHAPES = (
    'S V and V',  # coordinated verbs
    'S P N',  # participle clause
    'S V N that N can B',  # relative clause
    'S is being P by N',  # passive
    'S V T N',  # phrasal verb
    'S R',  # verbless
    'B N R and B',  # imperative with coordination
    'S is P R while P',  # progressive with a while clause
    'S V N R',
)
_PARTS = {'S': _noun_phrase(), 'N': _noun_phrase(),
          'V': st.sampled_from(_VERBS), 'P': st.sampled_from(_PARTICIPLES),
          'B': st.sampled_from(_BASES), 'R': _pp(),
          'T': st.sampled_from(_PARTICLES)}
# Words in any order.
_ANY_WORD = st.sampled_from(
    _NOUNS + _VERBS + _PARTICIPLES + _BASES + _PREPOSITIONS + _PARTICLES +
    _DETERMINERS[:-1] + ['is', 'are', 'then', 'who', 'not'])


@st.composite
def _clause(draw):
  if draw(st.integers(0, 9)) == 0:
    return ' '.join(draw(st.lists(_ANY_WORD, min_size=1, max_size=12)))
  shape = draw(st.sampled_from(_SHAPES))
  return ' '.join(draw(_PARTS[part]) if part in _PARTS else part
                  for part in shape.split())


def _typo(word, position, kind):
  if len(word) < 3:
    return word
  i = position % (len(word) - 1)
  if kind == 0:
    return word[:i] + word[i + 1:]  # dropped letter
  if kind == 1:
    return word[:i] + word[i] + word[i:]  # doubled letter
  return word[:i] + word[i + 1] + word[i] + word[i + 2:]  # swapped letters


@st.composite
def _caption(draw):
  caption = draw(_clause())
  for _ in range(draw(st.integers(0, 2))):
    caption += ' ' + draw(st.sampled_from(['and', 'then', 'while', '']))
    caption += ' ' + draw(_clause())
  words = caption.split()
  for _ in range(draw(st.integers(0, 2))):
    index = draw(st.integers(0, len(words) - 1))
    words[index] = _typo(words[index], draw(st.integers(0, 20)),
                         draw(st.integers(0, 2)))
  return ' '.join(words)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(_caption(), min_size=1, max_size=8))
def test_fuzzed_captions_never_raise_and_give_release_graphs(nlp, captions):
  graphs, failures = _parse(nlp, captions)
  assert not failures
  for sentence in captions:
    assert_release_graph(sentence, graphs[sentence])


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(st.text(alphabet=st.characters(
    blacklist_categories=('Cs', 'Zs', 'Zl', 'Zp', 'Cc')), min_size=1,
                         max_size=6), min_size=1, max_size=10))
def test_any_words_never_raise(nlp, words):
  sentence = ' '.join(words)
  graphs, failures = _parse(nlp, [sentence])
  assert not failures
  assert_release_graph(sentence, graphs[sentence])


@pytest.mark.skipif(not os.path.isdir(_MSVD),
                    reason='needs ../shared/data/msvd_captions')
def test_every_msvd_caption_parses_without_a_fallback(nlp):
  sentences = []
  for name in ('sents_test_lc_nopunc.txt', 'sents_val_lc_nopunc.txt'):
    with open(os.path.join(_MSVD, name)) as f:
      sentences.extend(line.rstrip('\n').split('\t', 1)[1] for line in f)
  assert len(sentences) == 32053
  graphs, failures = _parse(nlp, sentences)
  assert not failures, list(failures.items())[:5]
  assert len(graphs) == len(set(sentences))
  for sentence, graph in graphs.items():
    assert_release_graph(sentence, graph)
