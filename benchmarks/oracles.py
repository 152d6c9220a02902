"""No-learning oracles on the synthetic data: where the ceiling is.

  python -m benchmarks.synthetic_oracle  (prints and writes the tables)

Both oracles know the exact concept codes and read each caption's concepts
off its exact role graph; neither learns anything. They decode every frame
into concept coefficients by least squares on the code table (which undoes
any linear overlap of the codes, but not noise, distractors or background).

- bag: cosine between the caption's bag of role-bound concepts and the
  video's mean frame coefficients (what global pooling could at best see).
- structure: each event the caption describes must show all its concepts
  in the same frames: its concepts' mean coefficient (the action's summed
  over its phases), averaged over a window of `min_event_frames` frames,
  at the best window; a caption scores the mean over its events.

Prints retrieval and binary selection tables and writes them as JSON.
"""

import numpy as np

from data_pipelines import synthetic
from hgr_jax import binary_selection
from hgr_jax import metrics

ORACLES = ('bag', 'structure')
_VERB_ACTIONS = {form: action
                 for action, forms in synthetic.ACTION_FORMS.items()
                 for form in forms}
_PHRASE_LOCATIONS = {phrase: location
                     for location, phrase in synthetic.LOCATION_PHRASES.items()}
_ARGUMENT_ROLES = {'ARG0': 'agent', 'ARG1': 'patient'}


def caption_events(graph):
  """The (partial) `synthetic.Event` of each verb of a role graph.

  Keys the caption leaves out (attributes, location) are missing.
  """
  nodes, edges = graph
  events = {}
  for verb, argument, role in edges:
    event = events.setdefault(
        verb, dict(action=_VERB_ACTIONS[nodes[verb]['words'][0]]))
    words = nodes[argument]['words']
    if role == 'ARGM-LOC':
      event['location'] = _PHRASE_LOCATIONS[' '.join(words)]
    else:
      key = _ARGUMENT_ROLES[role]
      # [by] article [attribute] entity.
      event[key] = words[-1]
      if words[-2] in synthetic.ATTRIBUTES:
        event[f'{key}_attribute'] = words[-2]
  return list(events.values())


def caption_weights(graphs, num_codes):
  """Concept weights of captions and of the events they describe.

  Args:
    graphs: N role graphs.
    num_codes: rows of the code table.

  Returns:
    bags: (N, num_codes) 0/1 concept bag of each caption.
    events: (E, num_codes) weights whose product with a frame's coefficients
      is the mean evidence of an event's concepts (an action's summed over
      its phases, of which a frame shows one).
    event_caption: (E,) the caption of each event.
  """
  bags = np.zeros((len(graphs), num_codes), np.float32)
  events, event_caption = [], []
  for i, graph in enumerate(graphs):
    for event in caption_events(graph):
      static, phases = synthetic.code_rows(event)
      bags[i, static + phases] = 1.0
      weights = np.zeros(num_codes, np.float32)
      weights[static + phases] = 1.0 / (len(static) + 1)
      events.append(weights)
      event_caption.append(i)
  return bags, np.stack(events), np.asarray(event_caption)


def bag_scores(coefficients, bags):
  """(videos, N) cosine of mean frame coefficients and concept bags.

  Args:
    coefficients: per video, (frames, codes) concept coefficients.
    bags: (N, codes) from `caption_weights`.
  """
  videos = np.stack([c.mean(axis=0) for c in coefficients])
  videos /= np.linalg.norm(videos, axis=1, keepdims=True)
  return videos @ (bags / np.linalg.norm(bags, axis=1, keepdims=True)).T


def structure_scores(coefficients, events, event_caption, window):
  """(videos, N) mean over a caption's events of their best window.

  Args:
    coefficients: per video, (frames, codes) concept coefficients.
    events, event_caption: from `caption_weights`.
    window: frames over which an event's evidence is averaged.
  """
  per_caption = np.bincount(event_caption)
  scores = []
  for video in coefficients:
    evidence = video @ events.T  # (frames, E)
    size = min(window, len(evidence))
    sums = np.cumsum(np.pad(evidence, ((1, 0), (0, 0))), axis=0)
    best = ((sums[size:] - sums[:-size]) / size).max(axis=0)
    scores.append(np.bincount(event_caption, best) / per_caption)
  return np.stack(scores)


def evaluate(params, split):
  """{oracle: retrieval metrics and binary selection accuracies}."""
  codes = synthetic.concept_codes(params)
  decoder = np.linalg.pinv(codes.T)
  coefficients, graphs, caption_video = [], [], []
  for index, video in enumerate(synthetic.generate_split(split, params)):
    coefficients.append(video['frames'] @ decoder.T)
    graphs.extend(video['graphs'])
    caption_video.extend([index] * len(video['graphs']))
  caption_video = np.asarray(caption_video)
  twin_graphs = {kind: [] for kind in binary_selection.TYPES}
  for video in synthetic.perturbed_captions(split, params):
    for kind, twins in video['perturbed'].items():
      twin_graphs[kind].extend(graph for _, graph in twins)

  def all_scores(graphs):
    bags, events, event_caption = caption_weights(graphs, len(codes))
    return dict(bag=bag_scores(coefficients, bags),
                structure=structure_scores(coefficients, events,
                                           event_caption,
                                           params.min_event_frames))

  pairs = (caption_video, np.arange(len(caption_video)))
  true = all_scores(graphs)
  twins = {kind: all_scores(g) for kind, g in twin_graphs.items()}
  results = {}
  for name in ORACLES:
    results[name] = metrics.retrieval_metrics(true[name], caption_video)
    results[name].update(binary_selection.accuracies(
        {kind: true[name][pairs] for kind in twins},
        {kind: scores[name][pairs] for kind, scores in twins.items()}))
  return results
