"""Compositional synthetic video-text data with exact role graphs.

A video shows one or two events, each ``agent (attribute) -action-> patient
(attribute) at location``, occupying a contiguous run of frames. Frame features
are noisy sums of fixed random concept codes, and the codes are bound to roles:
a dog as agent and a dog as patient are different vectors, and an action's
code changes over four temporal phases. Within an event, who does what to
whom is thus visible even after pooling, but how concepts are bound across
two events is visible only at frame level: the events' frames are disjoint,
so "a man chases a dog and a girl feeds a cat" and "a man feeds a dog and a
girl chases a cat" have the same expected mean-pooled feature, as do two
events in either temporal order. Validation and test splits group each video
with confusers (swapped roles, another action, another entity, re-bound
events), which makes fine-grained matching (phrase-to-frame attention over
role graphs) pay off against global pooling.

Captions are lower-case, whitespace-tokenised and come with their role graphs
in the HGR release format (see `role_graph`). Everything is deterministic in
`SyntheticParams`; nothing is written to disk.
"""

import dataclasses
import itertools
import math
import zlib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from data_pipelines import role_graph

ENTITIES = ('man', 'woman', 'boy', 'girl', 'dog', 'cat', 'horse', 'bird',
            'ball', 'box', 'car', 'bike', 'chair', 'guitar', 'cake', 'kite')
ATTRIBUTES = ('red', 'blue', 'green', 'yellow', 'small', 'big', 'old',
              'young')
# Base form -> (third person present, progressive, past participle).
ACTION_FORMS = {
    'chase': ('chases', 'chasing', 'chased'),
    'push': ('pushes', 'pushing', 'pushed'),
    'pull': ('pulls', 'pulling', 'pulled'),
    'carry': ('carries', 'carrying', 'carried'),
    'kick': ('kicks', 'kicking', 'kicked'),
    'hold': ('holds', 'holding', 'held'),
    'follow': ('follows', 'following', 'followed'),
    'watch': ('watches', 'watching', 'watched'),
    'feed': ('feeds', 'feeding', 'fed'),
    'wash': ('washes', 'washing', 'washed'),
    'catch': ('catches', 'catching', 'caught'),
    'throw': ('throws', 'throwing', 'thrown'),
}
ACTIONS = tuple(ACTION_FORMS)
LOCATION_PHRASES = {
    'park': 'in the park',
    'beach': 'on the beach',
    'kitchen': 'in the kitchen',
    'street': 'on the street',
    'garden': 'in the garden',
    'lake': 'at the lake',
    'stage': 'on the stage',
    'snow': 'in the snow',
}
LOCATIONS = tuple(LOCATION_PHRASES)
NUM_PHASES = 4
SPLITS = ('train', 'validation', 'test')

_TEMPLATES = ('active', 'passive', 'progressive')
_JOINERS = ('and', 'then', 'while', 'after')
_FUNCTION_WORDS = ('a', 'an', 'the', 'is', 'by')
# Bounds the search for distinct captions when params leave little variety.
_CAPTION_ATTEMPTS_PER_CAPTION = 50
_CONFUSER_ATTEMPTS = 20

# Row offsets of each concept family in the code table.
_AGENT = 0
_PATIENT = _AGENT + len(ENTITIES)
_AGENT_ATTRIBUTE = _PATIENT + len(ENTITIES)
_PATIENT_ATTRIBUTE = _AGENT_ATTRIBUTE + len(ATTRIBUTES)
_ACTION = _PATIENT_ATTRIBUTE + len(ATTRIBUTES)
_LOCATION = _ACTION + len(ACTIONS) * NUM_PHASES
_NUM_CODES = _LOCATION + len(LOCATIONS)

# Keys: agent, agent_attribute, action, patient, patient_attribute, location.
Event = Dict[str, str]
# Keys: entity, role ('agent' or 'patient'), start, end (frame fractions).
Distractor = Dict[str, Any]
Chunk = Tuple[Optional[str], List[str]]  # (role or None, words)


@dataclasses.dataclass(frozen=True)
class SyntheticParams:
  """Sizes and difficulty of the synthetic dataset.

  Attributes:
    seed: determines the concept codes and every split.
    feature_dim: frame feature size.
    num_train_videos, num_validation_videos, num_test_videos: split sizes.
    min_frames, max_frames: inclusive range of frames per video.
    min_captions, max_captions: inclusive range of captions per video.
    noise: norm of the per-frame isotropic Gaussian noise (codes have
      norm 1).
    background: norm of a per-video offset shared by all its frames.
    min_amplitude, max_amplitude: range of the per-frame code amplitudes.
    min_event_frames: shortest run of frames an event may get.
    two_event_prob: probability that a video shows two events.
    drop_attribute_prob: probability that a caption omits an attribute.
    drop_location_prob: probability that a caption omits the location.
    single_event_caption_prob: probability that a caption of a two-event
      video describes only one of them.
    definite_article_prob: probability of "the" rather than "a"/"an".
    code_overlap: share of each code's squared norm that comes from a
      nonlinear mix of a low-dimensional latent; the same concept in two
      roles (or two phases of an action) shares its latent, so their codes
      have cosine ~code_overlap, and other concepts overlap at random.
      0 gives independent codes.
    latent_dim: size of each concept's latent.
    num_distractors: unmentioned entities per video, each shown in a random
      role over a random run of frames; never part of an event or caption.
    extra_confusers: confusers added to each validation/test group on top of
      the 2-3 that every group gets, all distinct from the group's videos.
  """
  seed: int = 0
  feature_dim: int = 1024
  num_train_videos: int = 1200
  num_validation_videos: int = 300
  num_test_videos: int = 300
  min_frames: int = 12
  max_frames: int = 24
  min_captions: int = 5
  max_captions: int = 10
  noise: float = 1.0
  background: float = 0.3
  min_amplitude: float = 0.5
  max_amplitude: float = 1.5
  min_event_frames: int = 3
  two_event_prob: float = 0.5
  drop_attribute_prob: float = 0.3
  drop_location_prob: float = 0.4
  single_event_caption_prob: float = 0.15
  definite_article_prob: float = 0.3
  code_overlap: float = 0.0
  latent_dim: int = 8
  num_distractors: int = 0
  extra_confusers: int = 0

  def __post_init__(self):
    if not 2 * self.min_event_frames <= self.min_frames <= self.max_frames:
      raise ValueError(
          'Need 2 * min_event_frames <= min_frames <= max_frames, got '
          f'{self.min_event_frames}, {self.min_frames}, '
          f'{self.max_frames}.')
    if not 1 <= self.min_captions <= self.max_captions:
      raise ValueError('Need 1 <= min_captions <= max_captions, got '
                       f'{self.min_captions}, {self.max_captions}.')
    if not 0 <= self.code_overlap < 1:
      raise ValueError(f'Need 0 <= code_overlap < 1, got {self.code_overlap}.')
    # Two events use up to 4 entities, and an entity binary selection twin
    # needs one that is nowhere in the video.
    if not 0 <= self.num_distractors <= len(ENTITIES) - 5:
      raise ValueError(f'Need 0 <= num_distractors <= {len(ENTITIES) - 5}, '
                       f'got {self.num_distractors}.')


def vocabulary(params: Optional[SyntheticParams] = None) -> List[str]:
  """Every word any caption can contain, sorted.

  Args:
    params: accepted so callers can treat all entry points alike; the
      vocabulary is fixed by the world and does not depend on it.
  """
  del params
  words = set(ENTITIES + ATTRIBUTES + _JOINERS + _FUNCTION_WORDS)
  words.update(itertools.chain.from_iterable(ACTION_FORMS.values()))
  for phrase in LOCATION_PHRASES.values():
    words.update(phrase.split())
  return sorted(words)


def word2int() -> Dict[str, int]:
  """Special tokens at their `role_graph` ids, then `vocabulary()` from 3."""
  tokens = role_graph.SPECIAL_TOKENS + tuple(vocabulary())
  return {word: i for i, word in enumerate(tokens)}


def generate_split(
    split: str,
    params: SyntheticParams = SyntheticParams(),
) -> Iterator[Dict[str, Any]]:
  """Generates the videos of one split.

  Args:
    split: 'train' (independent random videos), or 'validation' / 'test'
      (groups of a base video followed by 2-3 confusers derived from it).
    params: dataset parameters.

  Returns:
    An iterator over dicts with
      video_id: str, e.g. 'synthetic_test_000123'.
      frames: float32 (num_frames, feature_dim).
      captions: list of distinct str.
      graphs: role graph of each caption, HGR release format.
      events: list of `Event` dicts in temporal order.
      distractors: list of `Distractor` dicts (unmentioned entities).
  """
  if split not in SPLITS:
    raise ValueError(f'Unknown split {split!r}, expected one of {SPLITS}.')
  return _generate(split, params)


def _generate(split: str, params: SyntheticParams) -> Iterator[Dict[str, Any]]:
  for video in _videos(split, params):
    yield {k: video[k] for k in ('video_id', 'frames', 'captions', 'graphs',
                                 'events', 'distractors')}


def _videos(split: str, params: SyntheticParams) -> Iterator[Dict[str, Any]]:
  """`generate_split`'s videos plus each caption's `_CaptionPlan` (plans)."""
  codes = concept_codes(params)
  num_videos = getattr(params, f'num_{split}_videos')
  all_events = itertools.islice(
      _split_events(split, _rng(params, split), params), num_videos)
  for index, events in enumerate(all_events):
    # A stream per video keeps events fixed when rendering params change.
    rng = _rng(params, split, index)
    distractors = _distractors(events, _rng(params, split, index,
                                            'distractors'), params)
    frames = _render_frames(events, distractors, codes, rng, params)
    captions, graphs, plans = _captions(events, rng, params)
    yield dict(video_id=f'synthetic_{split}_{index:06d}', frames=frames,
               captions=captions, graphs=graphs, events=events,
               distractors=distractors, plans=plans, index=index)


def _rng(params: SyntheticParams, *stream: Any) -> np.random.Generator:
  """An independent generator per named stream, e.g. ('test', 12)."""
  key = tuple(zlib.crc32(part.encode()) if isinstance(part, str) else part
              for part in stream)
  return np.random.default_rng(
      np.random.SeedSequence(params.seed, spawn_key=key))


def concept_codes(params: SyntheticParams) -> np.ndarray:
  """Unit-norm codes of the role-bound concepts, float32 (codes, feature_dim).

  A frame's features are a weighted sum of the codes of the concepts it
  shows (rows: `code_rows`) plus noise.
  """
  codes = _rng(params, 'codes').standard_normal(
      (_NUM_CODES, params.feature_dim), dtype=np.float32)
  codes /= np.linalg.norm(codes, axis=1, keepdims=True)
  if not params.code_overlap:
    return codes
  overlap = np.float32(params.code_overlap)
  codes = (np.sqrt(1 - overlap) * codes +
           np.sqrt(overlap) * _shared_codes(params)[_code_concepts()])
  return codes / np.linalg.norm(codes, axis=1, keepdims=True)


def _code_concepts() -> np.ndarray:
  """The concept (entity, attribute, action, location) of each code row."""
  entities = np.arange(len(ENTITIES))
  attributes = len(ENTITIES) + np.arange(len(ATTRIBUTES))
  actions = attributes[-1] + 1 + np.arange(len(ACTIONS))
  locations = actions[-1] + 1 + np.arange(len(LOCATIONS))
  return np.concatenate([entities, entities, attributes, attributes,
                         np.repeat(actions, NUM_PHASES), locations])


def _shared_codes(params: SyntheticParams) -> np.ndarray:
  """Unit-norm nonlinear mixes of per-concept latents, (concepts, dim).

  A random two-layer tanh network maps low-dimensional Gaussian latents to
  the features, so concepts overlap in a way no linear map undoes.
  """
  rng = _rng(params, 'latent')
  num_concepts = _code_concepts().max() + 1
  hidden = 4 * params.latent_dim
  latents = rng.standard_normal((num_concepts, params.latent_dim),
                                dtype=np.float32)
  first = rng.standard_normal((params.latent_dim, hidden), dtype=np.float32)
  second = rng.standard_normal((hidden, params.feature_dim), dtype=np.float32)
  # Explicit sums rather than matmuls keep the codes bit-identical across
  # BLAS builds.
  hidden_units = np.tanh(
      (latents[:, :, None] * first).sum(axis=1) / math.sqrt(params.latent_dim))
  shared = (hidden_units[:, :, None] * second).sum(axis=1)
  return shared / np.linalg.norm(shared, axis=1, keepdims=True)


# Events and confusers.


def _random_event(rng: np.random.Generator, location: str,
                  excluded_action: Optional[str] = None) -> Event:
  agent, patient = rng.choice(len(ENTITIES), size=2, replace=False)
  actions = [a for a in ACTIONS if a != excluded_action]
  return dict(agent=ENTITIES[agent],
              agent_attribute=ATTRIBUTES[rng.integers(len(ATTRIBUTES))],
              action=actions[rng.integers(len(actions))],
              patient=ENTITIES[patient],
              patient_attribute=ATTRIBUTES[rng.integers(len(ATTRIBUTES))],
              location=location)


def _random_events(rng: np.random.Generator,
                   params: SyntheticParams) -> List[Event]:
  # Both events happen in the same scene.
  location = LOCATIONS[rng.integers(len(LOCATIONS))]
  first = _random_event(rng, location)
  if rng.random() >= params.two_event_prob:
    return [first]
  # Distinct actions guarantee that swapping them re-binds the concepts.
  return [first, _random_event(rng, location, first['action'])]


def _replace_event(events: Sequence[Event], index: int,
                   **changes: str) -> List[Event]:
  return [dict(e, **changes) if i == index else dict(e)
          for i, e in enumerate(events)]


def _swap_roles(events: Sequence[Event],
                rng: np.random.Generator) -> List[Event]:
  """The same entities (with their attributes) in swapped roles."""
  index = rng.integers(len(events))
  e = events[index]
  return _replace_event(events, index, agent=e['patient'],
                        agent_attribute=e['patient_attribute'],
                        patient=e['agent'],
                        patient_attribute=e['agent_attribute'])


def _other_action(events: Sequence[Event],
                  rng: np.random.Generator) -> List[Event]:
  """The same entities doing an action the video does not contain."""
  used = {e['action'] for e in events}
  actions = [a for a in ACTIONS if a not in used]
  return _replace_event(events, rng.integers(len(events)),
                        action=actions[rng.integers(len(actions))])


def _other_entity(events: Sequence[Event],
                  rng: np.random.Generator) -> List[Event]:
  """The same action with its agent or its patient replaced."""
  index = rng.integers(len(events))
  e = events[index]
  role = ('agent', 'patient')[rng.integers(2)]
  entities = [x for x in ENTITIES if x not in (e['agent'], e['patient'])]
  return _replace_event(events, index,
                        **{role: entities[rng.integers(len(entities))]})


def _rebind(events: Sequence[Event],
            rng: np.random.Generator) -> List[Event]:
  """The same bag of concepts, bound differently across two events."""
  first, second = events
  swappable = [('action',)]
  # Swapping patients must neither make an entity act on itself nor leave
  # the events unchanged.
  if (first['agent'] != second['patient'] and
      second['agent'] != first['patient'] and
      (first['patient'], first['patient_attribute']) !=
      (second['patient'], second['patient_attribute'])):
    swappable.append(('patient', 'patient_attribute'))
  keys = swappable[rng.integers(len(swappable))]
  return [dict(first, **{k: second[k] for k in keys}),
          dict(second, **{k: first[k] for k in keys})]


_ROLE_CONFUSERS = (_swap_roles, _other_action, _other_entity)


def _confuser_group(rng: np.random.Generator,
                    params: SyntheticParams) -> List[List[Event]]:
  """A base video's events followed by those of its confusers."""
  base = _random_events(rng, params)
  order = rng.permutation(len(_ROLE_CONFUSERS))
  if len(base) == 1:
    makers = [_ROLE_CONFUSERS[i] for i in order[:rng.integers(2, 4)]]
  else:
    # Re-binding is what only frame-level matching can tell apart, so
    # every two-event group gets one.
    makers = [_rebind] + [_ROLE_CONFUSERS[i]
                          for i in order[:rng.integers(1, 3)]]
  group = [base] + [make(base, rng) for make in makers]
  makers = _ROLE_CONFUSERS + ((_rebind,) if len(base) == 2 else ())
  for _ in range(params.extra_confusers):
    # Bounded, as a group can hold every confuser some bases allow.
    for _ in range(_CONFUSER_ATTEMPTS):
      confuser = makers[rng.integers(len(makers))](base, rng)
      if confuser not in group:
        group.append(confuser)
        break
  return group


def _split_events(split: str, rng: np.random.Generator,
                  params: SyntheticParams) -> Iterator[List[Event]]:
  """Endless stream of per-video event lists for a split."""
  while True:
    if split == 'train':
      yield _random_events(rng, params)
    else:
      yield from _confuser_group(rng, params)


# Frames.


def _event_lengths(num_frames: int, num_events: int,
                   rng: np.random.Generator,
                   params: SyntheticParams) -> np.ndarray:
  """Roughly equal run lengths, each >= min_event_frames, summing up."""
  spare = num_frames - num_events * params.min_event_frames
  weights = rng.uniform(0.6, 1.4, num_events)
  cuts = np.round(np.cumsum(weights) / weights.sum() * spare).astype(int)
  return params.min_event_frames + np.diff(cuts, prepend=0)


def code_rows(event: Event) -> Tuple[List[int], List[int]]:
  """Rows of `concept_codes` that show an event.

  Args:
    event: an `Event`; keys other than action may be missing (a caption that
      leaves the concept out).

  Returns:
    The rows of its static concepts (agent, patient, their attributes,
    location; those present) and the rows of its action's phases, in order.
  """
  families = (('agent', _AGENT, ENTITIES), ('patient', _PATIENT, ENTITIES),
              ('agent_attribute', _AGENT_ATTRIBUTE, ATTRIBUTES),
              ('patient_attribute', _PATIENT_ATTRIBUTE, ATTRIBUTES),
              ('location', _LOCATION, LOCATIONS))
  static = [offset + names.index(event[key])
            for key, offset, names in families if key in event]
  first_phase = _ACTION + NUM_PHASES * ACTIONS.index(event['action'])
  return static, list(range(first_phase, first_phase + NUM_PHASES))


def _event_code_ids(event: Event, num_frames: int) -> np.ndarray:
  """Code table rows present in each frame of an event, (num_frames, 6)."""
  static, phases = code_rows(event)
  # Frame t is at relative position t / num_frames of the event.
  action = np.asarray(phases)[NUM_PHASES * np.arange(num_frames) // num_frames]
  return np.concatenate(
      [np.tile(static, (num_frames, 1)), action[:, None]], axis=1)


def _distractors(events: Sequence[Event], rng: np.random.Generator,
                 params: SyntheticParams) -> List[Distractor]:
  """Entities no event uses, each in a role over a fraction of the video."""
  used = {e[r] for e in events for r in ('agent', 'patient')}
  unused = [x for x in ENTITIES if x not in used]
  chosen = rng.choice(len(unused), size=params.num_distractors, replace=False)
  distractors = []
  for i in chosen:
    start, end = np.sort(rng.uniform(0, 1, 2))
    distractors.append(dict(entity=unused[i],
                            role=('agent', 'patient')[rng.integers(2)],
                            start=float(start), end=float(end)))
  return distractors


def _distractor_code_ids(distractors: Sequence[Distractor],
                         num_frames: int) -> np.ndarray:
  """(num_frames, len(distractors)) code rows, -1 where one is absent."""
  code_ids = np.full((num_frames, len(distractors)), -1)
  for j, d in enumerate(distractors):
    row = (_AGENT if d['role'] == 'agent' else _PATIENT) + ENTITIES.index(
        d['entity'])
    # At least one frame, so that every distractor is shown.
    start = min(int(d['start'] * num_frames), num_frames - 1)
    end = max(int(round(d['end'] * num_frames)), start + 1)
    code_ids[start:end, j] = row
  return code_ids


def _render_frames(events: Sequence[Event],
                   distractors: Sequence[Distractor], codes: np.ndarray,
                   rng: np.random.Generator,
                   params: SyntheticParams) -> np.ndarray:
  """float32 (num_frames, feature_dim) features of consecutive events."""
  num_frames = int(rng.integers(params.min_frames, params.max_frames + 1))
  lengths = _event_lengths(num_frames, len(events), rng, params)
  code_ids = np.concatenate(
      [_event_code_ids(e, n) for e, n in zip(events, lengths)])
  amplitudes = rng.uniform(params.min_amplitude, params.max_amplitude,
                           code_ids.shape).astype(np.float32)
  # An explicit weighted sum rather than a matmul keeps the output
  # bit-identical across BLAS builds.
  frames = (codes[code_ids] * amplitudes[..., None]).sum(axis=1)
  if distractors:
    extra = _distractor_code_ids(distractors, num_frames)
    extra_amplitudes = rng.uniform(params.min_amplitude, params.max_amplitude,
                                   extra.shape).astype(np.float32)
    extra_amplitudes[extra < 0] = 0
    frames += (codes[np.maximum(extra, 0)] *
               extra_amplitudes[..., None]).sum(axis=1)
  dim = params.feature_dim
  noise = rng.standard_normal((num_frames, dim), dtype=np.float32)
  background = rng.standard_normal(dim, dtype=np.float32)
  background *= params.background / np.linalg.norm(background)
  return frames + noise * (params.noise / math.sqrt(dim)) + background


# Captions and role graphs.


def _noun_phrase(entity: str, attribute: str, rng: np.random.Generator,
                 params: SyntheticParams) -> List[str]:
  words = [entity]
  if rng.random() >= params.drop_attribute_prob:
    words.insert(0, attribute)
  if rng.random() < params.definite_article_prob:
    article = 'the'
  else:
    article = 'an' if words[0][0] in 'aeiou' else 'a'
  return [article] + words


def _clause(event: Event, with_location: bool, rng: np.random.Generator,
            params: SyntheticParams) -> List[Chunk]:
  """One event as a clause of (role, words) chunks, in sentence order."""
  agent = _noun_phrase(event['agent'], event['agent_attribute'], rng, params)
  patient = _noun_phrase(event['patient'], event['patient_attribute'], rng,
                         params)
  present, progressive, participle = ACTION_FORMS[event['action']]
  template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
  # The auxiliary "is" belongs to no node, as in SRL output.
  if template == 'active':
    chunks = [('ARG0', agent), ('V', [present]), ('ARG1', patient)]
  elif template == 'progressive':
    chunks = [('ARG0', agent), (None, ['is']), ('V', [progressive]),
              ('ARG1', patient)]
  else:
    # SRL puts the "by" of a passive agent inside ARG0.
    chunks = [('ARG1', patient), (None, ['is']), ('V', [participle]),
              ('ARG0', ['by'] + agent)]
  if with_location:
    chunks.append(('ARGM-LOC', LOCATION_PHRASES[event['location']].split()))
  return chunks


def _assemble(clauses: Sequence[List[Chunk]], joiner: str) -> Tuple[str, list]:
  """Joins clauses into a caption and its HGR release format role graph."""
  words, nodes, edges = [], {}, []
  for i, chunks in enumerate(clauses):
    if i:
      words.append(joiner)
    spans = []
    for _, chunk in chunks:
      spans.append(list(range(len(words), len(words) + len(chunk))))
      words.extend(chunk)
    roles = [role for role, _ in chunks]
    # Like the official graphs: each verb node precedes its arguments.
    order = [roles.index('V')] + [
        j for j, role in enumerate(roles) if role not in (None, 'V')]
    for j in order:
      key = str(len(nodes) + 1)
      nodes[key] = dict(role=roles[j], spans=spans[j],
                        words=list(chunks[j][1]))
      if roles[j] == 'V':
        verb_key = key
      else:
        edges.append([verb_key, key, roles[j]])
  root = dict(role='ROOT', spans=list(range(len(words))), words=list(words))
  return ' '.join(words), [dict(ROOT=root, **nodes), edges]


@dataclasses.dataclass(frozen=True)
class _CaptionPlan:
  """What a caption says, and the generator state its wording started from.

  Rendering other events from the same state reuses every wording choice
  (templates, articles, dropped attributes), which is how the binary
  selection captions differ from a true caption in one concept only.
  """
  described: Tuple[int, ...]  # Indices of the events, in sentence order.
  joiner: str
  with_location: bool
  wording_state: Dict[str, Any]


def _plan_caption(events: Sequence[Event], rng: np.random.Generator,
                  params: SyntheticParams) -> _CaptionPlan:
  described = list(range(len(events)))
  if len(described) > 1 and rng.random() < params.single_event_caption_prob:
    described = [described[rng.integers(len(described))]]
  joiner = _JOINERS[rng.integers(len(_JOINERS))]
  # Events are in temporal order; "then" keeps it, "B after A" reverses it,
  # "and" and "while" say nothing about it.
  if joiner == 'after' or (joiner in ('and', 'while') and rng.random() < 0.5):
    described.reverse()
  # The events share their scene, so the location is said once, at the end.
  with_location = rng.random() >= params.drop_location_prob
  return _CaptionPlan(tuple(described), joiner, with_location,
                      rng.bit_generator.state)


def _render_caption(events: Sequence[Event], plan: _CaptionPlan,
                    rng: np.random.Generator,
                    params: SyntheticParams) -> Tuple[str, list]:
  last = len(plan.described) - 1
  clauses = [_clause(events[e], plan.with_location and i == last, rng, params)
             for i, e in enumerate(plan.described)]
  return _assemble(clauses, plan.joiner)


def _captions(
    events: Sequence[Event], rng: np.random.Generator, params: SyntheticParams
) -> Tuple[List[str], List[list], List[_CaptionPlan]]:
  """Distinct captions of a video, their role graphs and their plans."""
  target = rng.integers(params.min_captions, params.max_captions + 1)
  found = {}  # Caption -> (graph, plan), in insertion order.
  for _ in range(_CAPTION_ATTEMPTS_PER_CAPTION * target):
    plan = _plan_caption(events, rng, params)
    caption, graph = _render_caption(events, plan, rng, params)
    found.setdefault(caption, (graph, plan))
    if len(found) == target:
      break
  graphs, plans = zip(*found.values())
  return list(found), list(graphs), list(plans)


# Binary selection (HGR paper, Youtube2Text study): a true caption against
# the same caption with one concept changed.

PERTURBATIONS = ('role_swap', 'action', 'entity')


def _perturb_event(events: Sequence[Event], index: int, kind: str,
                   rng: np.random.Generator,
                   distractors: Sequence[Distractor] = ()) -> List[Event]:
  """`events` with event `index` changed so that no event matches it.

  role_swap exchanges agent and patient (with their attributes; they are
  distinct entities, so the caption changes); action picks one the video
  does not show; entity replaces the agent or the patient by an entity that
  is nowhere in the video, neither in an event nor as a distractor.
  """
  e = events[index]
  if kind == 'role_swap':
    return _replace_event(events, index, agent=e['patient'],
                          agent_attribute=e['patient_attribute'],
                          patient=e['agent'],
                          patient_attribute=e['agent_attribute'])
  if kind == 'action':
    used = {x['action'] for x in events}
    actions = [a for a in ACTIONS if a not in used]
    return _replace_event(events, index,
                          action=actions[rng.integers(len(actions))])
  if kind == 'entity':
    used = {x[r] for x in events for r in ('agent', 'patient')}
    used.update(d['entity'] for d in distractors)
    entities = [x for x in ENTITIES if x not in used]
    role = ('agent', 'patient')[rng.integers(2)]
    return _replace_event(events, index,
                          **{role: entities[rng.integers(len(entities))]})
  raise ValueError(f'Unknown perturbation {kind!r}, expected one of '
                   f'{PERTURBATIONS}.')


def perturbed_captions(
    split: str,
    params: SyntheticParams = SyntheticParams(),
) -> Iterator[Dict[str, Any]]:
  """A false twin of every caption of a split, per perturbation type.

  Each twin is the true caption's wording (same templates, articles and
  dropped attributes) applied to the video's events with one event it
  describes perturbed by `_perturb_event`, so it differs from the true
  caption in exactly the perturbed concept and comes with an exact role
  graph.

  Args:
    split: one of `SPLITS`.
    params: dataset parameters (those the split was generated with).

  Returns:
    An iterator, in `generate_split` order, over dicts with
      video_id: str.
      captions: the video's true captions.
      perturbed: {type: [(caption, graph), ...]} aligned with captions, for
        each type of `PERTURBATIONS`.
  """
  if split not in SPLITS:
    raise ValueError(f'Unknown split {split!r}, expected one of {SPLITS}.')
  for video in _videos(split, params):
    rng = _rng(params, split, video['index'], 'perturbations')
    perturbed = {kind: [] for kind in PERTURBATIONS}
    for plan in video['plans']:
      for kind in PERTURBATIONS:
        target = plan.described[rng.integers(len(plan.described))]
        events = _perturb_event(video['events'], target, kind, rng,
                                video['distractors'])
        wording = np.random.default_rng()
        wording.bit_generator.state = plan.wording_state
        perturbed[kind].append(_render_caption(events, plan, wording, params))
    yield dict(video_id=video['video_id'], captions=video['captions'],
               perturbed=perturbed)
