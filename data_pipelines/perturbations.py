"""Binary selection captions from encoded role graphs, for any dataset.

The HGR paper's Youtube2Text study pairs each true caption with a false one
that differs in one concept: agent and patient swapped, the action replaced,
or an entity replaced. `data_pipelines.synthetic.perturbed_captions` builds
them from the synthetic templates; this module builds them from what every
dataset of the project stores, the encoded caption (see `example_format`):

- role_swap: the words of a verb's ARG0 and ARG1 spans exchange places and
  the two nodes exchange roles, so the graph still says which words are the
  agent ("a dog chases a man" from "a man chases a dog"). Spans are taken as
  they are, so a passive "by" phrase moves with its words.
- action: the last word of a verb node becomes another word seen as the last
  word of a verb node in the data.
- entity: the last word (the head, in English noun phrases) of an ARG0,
  ARG1 or ARG2 node becomes another word seen in that position in the data.

With sub-word tokens (config.tokenizer='sentencepiece') "word" above means
token: the last piece of a node is replaced. Replacement words never occur
in any caption of the same video, so the false caption does not name
something the video shows. Without lemmatisation another inflection of a
shown verb can still be drawn (e.g. "chased" for "chases") when no caption
of the video uses it.
"""

from typing import Dict, Mapping, Tuple

import numpy as np

from data_pipelines import role_graph

PERTURBATIONS = ('role_swap', 'action', 'entity')
_ENTITY_ROLES = tuple(role_graph.role_id(r) for r in ('ARG0', 'ARG1', 'ARG2'))
_AGENT, _PATIENT = role_graph.role_id('ARG0'), role_graph.role_id('ARG1')

Caption = Dict[str, np.ndarray]  # One caption's fields of CAPTION_KEYS.


def _span(mask):
  """(start, stop) of a contiguous non-empty mask row, else None."""
  positions = np.flatnonzero(mask)
  if not positions.size or positions[-1] - positions[0] + 1 != positions.size:
    return None
  return int(positions[0]), int(positions[-1]) + 1


def _head_words(captions, masks_key, roles):
  """Ids of the last word of every node with a role in `roles`."""
  masks = captions[masks_key]
  num_verbs = captions['verb_masks'].shape[1]
  node_roles = captions['node_roles']
  node_roles = (node_roles[:, :num_verbs] if masks_key == 'verb_masks'
                else node_roles[:, num_verbs:])
  words = set()
  for caption, node in zip(*np.nonzero(masks.any(-1) &
                                        np.isin(node_roles, roles))):
    last = np.flatnonzero(masks[caption, node])[-1]
    words.add(int(captions['token_ids'][caption, last]))
  return np.array(sorted(words - {role_graph.UNK_ID}), np.int32)


def head_vocabulary(
    captions: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Replacement candidates: {'action': verb heads, 'entity': argument heads}.

  Args:
    captions: CAPTION_KEYS arrays with a leading (captions,) axis.
  """
  return {'action': _head_words(captions, 'verb_masks',
                                (role_graph.role_id('V'),)),
          'entity': _head_words(captions, 'noun_masks', _ENTITY_ROLES)}


def swap_roles(caption: Caption) -> Caption | None:
  """The caption with the first verb's ARG0 and ARG1 spans exchanged.

  Returns None when no verb has both arguments as contiguous, disjoint spans.
  """
  num_verbs = caption['verb_masks'].shape[0]
  roles, adjacency = caption['node_roles'], caption['adjacency']
  for verb in range(num_verbs):
    if not caption['verb_masks'][verb].any():
      continue
    args = {}
    for noun, role in enumerate(roles[num_verbs:]):
      if (role in (_AGENT, _PATIENT) and role not in args and
          adjacency[1 + num_verbs + noun, 1 + verb] > 0):
        args[int(role)] = noun
    if len(args) < 2:
      continue
    agent, patient = args[_AGENT], args[_PATIENT]
    spans = [_span(caption['noun_masks'][n]) for n in (agent, patient)]
    if None in spans:
      continue
    (a0, a1), (b0, b1) = sorted(spans)
    if a1 > b0:
      continue
    width = caption['token_ids'].shape[0]
    # New position j holds the word from old position order[j].
    order = np.concatenate([np.arange(a0), np.arange(b0, b1),
                            np.arange(a1, b0), np.arange(a0, a1),
                            np.arange(b1, width)])
    out = dict(caption, token_ids=caption['token_ids'][order],
               verb_masks=caption['verb_masks'][:, order],
               noun_masks=caption['noun_masks'][:, order])
    swapped = roles.copy()
    swapped[num_verbs + agent] = _PATIENT
    swapped[num_verbs + patient] = _AGENT
    out['node_roles'] = swapped
    return out
  return None


def replace_head(caption: Caption, kind: str, candidates: np.ndarray,
                 excluded: np.ndarray, rng: np.random.Generator
                 ) -> Caption | None:
  """The caption with the last word of one verb ('action') or ARG0/1/2
  ('entity') node replaced by a word of `candidates` not in `excluded`.

  Returns None when the caption has no such node or no candidate is left.
  """
  num_verbs = caption['verb_masks'].shape[0]
  if kind == 'action':
    masks = caption['verb_masks']
    nodes = np.flatnonzero(masks.any(-1))
  else:
    masks = caption['noun_masks']
    nodes = np.flatnonzero(masks.any(-1) & np.isin(
        caption['node_roles'][num_verbs:], _ENTITY_ROLES))
  choices = np.setdiff1d(candidates, excluded)
  if not nodes.size or not choices.size:
    return None
  node = nodes[rng.integers(nodes.size)]
  token_ids = caption['token_ids'].copy()
  token_ids[np.flatnonzero(masks[node])[-1]] = choices[
      rng.integers(choices.size)]
  return dict(caption, token_ids=token_ids)


def perturb_split(captions: Mapping[str, np.ndarray],
                  caption_video: np.ndarray, seed: int = 0
                  ) -> Dict[str, Tuple[Dict[str, np.ndarray], np.ndarray]]:
  """False twins of a split's captions, for every type of `PERTURBATIONS`.

  Args:
    captions: CAPTION_KEYS arrays with a leading (captions,) axis.
    caption_video: (captions,) index of each caption's video.
    seed: seeds the choice of node and replacement word.

  Returns:
    {type: (perturbed, source)}: perturbed holds CAPTION_KEYS arrays with a
    leading (twins,) axis and source (twins,) the row of the true caption
    each twin was made from; captions that allow no twin of a type have
    none.
  """
  rng = np.random.default_rng(seed)
  vocabulary = head_vocabulary(captions)
  rows = {kind: ([], []) for kind in PERTURBATIONS}
  order = np.argsort(caption_video, kind='stable')
  for video_rows in np.split(order, np.flatnonzero(
      np.diff(caption_video[order])) + 1):
    lengths = captions['length'][video_rows]
    seen = np.unique(np.concatenate([
        captions['token_ids'][r, :n] for r, n in zip(video_rows, lengths)]))
    for row in video_rows:
      caption = {k: v[row] for k, v in captions.items()}
      for kind in PERTURBATIONS:
        twin = (swap_roles(caption) if kind == 'role_swap' else
                replace_head(caption, kind, vocabulary[kind], seen, rng))
        if twin is not None:
          rows[kind][0].append(twin)
          rows[kind][1].append(row)
  result = {}
  for kind, (twins, sources) in rows.items():
    if twins:
      stacked = {k: np.stack([t[k] for t in twins]) for k in captions}
    else:
      stacked = {k: v[:0] for k, v in captions.items()}
    result[kind] = (stacked, np.asarray(sources, np.int64))
  return result
