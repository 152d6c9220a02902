"""HANet's concept vocabulary and per-caption concept labels.

The official HANet code (Wu et al., ACM MM 2021) POS-tags the training
captions with NLTK, drops stop words, lemmatises verbs and nouns with WordNet
and keeps the 512 most frequent verbs and 1024 most frequent nouns. Neither
the tagger nor WordNet can be downloaded here, so this module decides the part
of speech from what every dataset of the project already stores, the role
graph, plus a lexicon shipped inside the `lemminflect` wheel:

  * verbs: words of verb nodes (the predicates of the role graph) that are not
    stop words, lemmatised as verbs;
  * nouns: the other words that are not stop words and that the lexicon knows
    as nouns but not as adjectives ("red", "young" are left out), lemmatised
    as nouns.

Counts are occurrences in the training split; ties are broken as in the
official code (by lemma, in reverse order). The vocabulary is computed from
the prepared dataset (token ids, lengths and verb masks of the train split,
and the dataset's word2int), so it works for any builder of the project, and
stored as `concepts.json` next to the dataset's TFRecords.
"""

import json
import os

import lemminflect
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data_pipelines import role_graph

FILE_NAME = 'concepts.json'

# Function words, auxiliaries and other words too common to be concepts.
STOP_WORDS = frozenset('''
a an the this that these those some any each every all both either neither no
nor not only own same such other another more most less least few many much
several enough very too so than then just also again once here there when where
why how what which who whom whose whoever whatever whether if else while until
because since as though although unless
i me my mine myself we us our ours ourselves you your yours yourself
yourselves he him his himself she her hers herself it its itself they them
their theirs themselves one ones someone something somebody anyone anything
everyone everything nothing nobody
am is are was were be been being have has had having do does did doing done
can could will would shall should may might must ought
of at by for with about against between into through during before after
above below to from up down in out on off over under onto upon across along
around behind beside besides beyond near toward towards within without via
and but or yet
s t d ll m o re ve y don doesn didn isn aren wasn weren hasn haven hadn won
wouldn shan shouldn mustn mightn needn couldn
'''.split())


def _lemma(word, upos):
  """The first lemma of `word` as `upos` ('VERB', 'NOUN'), from the lexicon
  or, for words it does not know, from lemminflect's rules."""
  lemmas = lemminflect.getAllLemmas(word, upos) or \
      lemminflect.getAllLemmasOOV(word, upos)
  return lemmas[upos][0]


def word_lemmas(word2int):
  """The verb and noun lemma of every vocabulary word, or None.

  Args:
    word2int: the dataset's vocabulary.

  Returns:
    (verb_lemmas, noun_lemmas): lists indexed by word id. A verb lemma is
    given to every alphabetic word that is not a stop word (it only counts
    inside verb nodes); a noun lemma only to those the lexicon knows as a
    noun and not as an adjective.
  """
  size = max(word2int.values()) + 1
  verbs, nouns = [None] * size, [None] * size
  for word, index in word2int.items():
    if word in role_graph.SPECIAL_TOKENS or word in STOP_WORDS or \
        not word.isalpha():
      continue
    verbs[index] = _lemma(word, 'VERB')
    readings = lemminflect.getAllLemmas(word)
    if 'NOUN' in readings and 'ADJ' not in readings:
      nouns[index] = readings['NOUN'][0]
  return verbs, nouns


def count_words(token_ids, lengths, verb_masks, vocab_size):
  """Occurrences of each word id inside and outside verb nodes.

  Args:
    token_ids: (captions, words) int.
    lengths: (captions,) int.
    verb_masks: (captions, verbs, words) bool.
    vocab_size: int.

  Returns:
    (in_verbs, elsewhere): (vocab_size,) int64 counts over valid words.
  """
  valid = np.arange(token_ids.shape[1])[None, :] < lengths[:, None]
  in_verb = np.any(verb_masks, axis=1) & valid
  return (np.bincount(token_ids[in_verb], minlength=vocab_size),
          np.bincount(token_ids[valid & ~in_verb], minlength=vocab_size))


def _ranked(word_counts, lemmas):
  """Lemma counts, most frequent first, ties by lemma in reverse order."""
  totals = {}
  for index in np.flatnonzero(word_counts):
    if lemmas[index] is not None:
      totals[lemmas[index]] = totals.get(lemmas[index], 0) + int(
          word_counts[index])
  return sorted(totals.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)


def build(builder):
  """Computes the concept vocabulary from the prepared train split.

  Returns:
    dict with 'verbs' and 'nouns' ([lemma, count] lists, ranked) and
    'verb_lemmas' and 'noun_lemmas' (per word id, see `word_lemmas`).
  """
  word2int = dict(builder.info.metadata['word2int'])
  verb_lemmas, noun_lemmas = word_lemmas(word2int)
  size = len(verb_lemmas)
  ds = builder.as_dataset(split='train', shuffle_files=False,
                          decoders={'frames': tfds.decode.SkipDecoding()})
  ds = ds.map(lambda ex: {k: ex['captions'][k] for k in
                          ('token_ids', 'length', 'verb_masks')})
  in_verbs = np.zeros(size, np.int64)
  elsewhere = np.zeros(size, np.int64)
  for video in tfds.as_numpy(ds):
    verbs, others = count_words(video['token_ids'], video['length'],
                                video['verb_masks'], size)
    in_verbs += verbs
    elsewhere += others
  return {'verbs': _ranked(in_verbs, verb_lemmas),
          'nouns': _ranked(elsewhere, noun_lemmas),
          'verb_lemmas': verb_lemmas, 'noun_lemmas': noun_lemmas}


def path(builder):
  return os.path.join(builder.data_dir, FILE_NAME)


def _word_tokens(builder):
  return getattr(builder.builder_config, 'tokenizer', 'word') == 'word'


def prepare(builder):
  """Writes the builder's concepts.json unless it is already there.

  Datasets of sub-word pieces get none: concepts are lemmas of whole words.
  """
  if not _word_tokens(builder) or tf.io.gfile.exists(path(builder)):
    return
  temporary = path(builder) + f'.tmp{os.getpid()}'
  with tf.io.gfile.GFile(temporary, 'w') as f:
    json.dump(build(builder), f)
  tf.io.gfile.rename(temporary, path(builder), overwrite=True)


def load_tables(builder, num_verbs, num_nouns):
  """Word id -> concept id lookup tables for the top concepts.

  Args:
    builder: a prepared builder (see `prepare`).
    num_verbs, num_nouns: concept vocabulary sizes (HANet: 512 and 1024);
      a dataset with fewer distinct lemmas leaves the extra concepts unused.

  Returns:
    (verb_table, noun_table): int32 (vocab_size,), the concept id of each
    word's lemma, or -1.
  """
  if not _word_tokens(builder):
    raise ValueError(
        "HANet's concept labels are lemmas of whole words, and this dataset "
        'is tokenised into sub-word pieces (SentencePiece or CLIP): use '
        '--config.tokenizer=word and --config.text_encoder=bigru.')
  if not tf.io.gfile.exists(path(builder)):
    raise FileNotFoundError(
        f'{path(builder)} is missing: prepare the dataset with '
        'data_pipelines.input_pipeline.prepare(builder) first.')
  with tf.io.gfile.GFile(path(builder)) as f:
    vocabulary = json.load(f)
  tables = []
  for kind, size in (('verb', num_verbs), ('noun', num_nouns)):
    ids = {lemma: i for i, (lemma, _) in
           enumerate(vocabulary[f'{kind}s'][:size])}
    tables.append(np.array([ids.get(lemma, -1) for lemma in
                            vocabulary[f'{kind}_lemmas']], np.int32))
  return tuple(tables)


def caption_labels(captions, verb_table, noun_table, num_verbs, num_nouns):
  """Concept labels and loss masks of all captions of one video (TF).

  A concept is a label of a caption when one of its words has that lemma
  (verbs inside verb nodes, nouns outside them). It is masked out of the
  caption's loss when another caption of the same video has it and this one
  does not (the official reader's rule).

  Args:
    captions: dict with token_ids (captions, words), length (captions,) and
      verb_masks (captions, verbs, words) tensors.
    verb_table, noun_table: from `load_tables`.
    num_verbs, num_nouns: concept vocabulary sizes.

  Returns:
    dict of bool tensors verb_concept_labels, verb_concept_mask
    (captions, num_verbs), noun_concept_labels, noun_concept_mask
    (captions, num_nouns).
  """
  token_ids = captions['token_ids']
  valid = tf.range(tf.shape(token_ids)[1])[None, :] < captions['length'][:,
                                                                         None]
  in_verb = tf.reduce_any(captions['verb_masks'], axis=1) & valid
  out = {}
  for kind, table, size, where in (
      ('verb', verb_table, num_verbs, in_verb),
      ('noun', noun_table, num_nouns, valid & ~in_verb)):
    ids = tf.where(where, tf.gather(tf.constant(table), token_ids), -1)
    labels = tf.reduce_any(tf.cast(tf.one_hot(ids, size), tf.bool), axis=1)
    in_video = tf.reduce_any(labels, axis=0, keepdims=True)
    out[f'{kind}_concept_labels'] = labels
    out[f'{kind}_concept_mask'] = labels | ~in_video
  return out

