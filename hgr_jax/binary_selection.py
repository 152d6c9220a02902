"""Fine-grained binary selection (HGR paper, Youtube2Text study).

For every video and true caption of a split, the model must score the true
caption above a false twin that differs in one concept: agent and patient
swapped (role_swap), another action (action) or another entity (entity).
The synthetic dataset makes the twins from its templates
(`synthetic.perturbed_captions`); other datasets from their encoded role
graphs (`perturbations.perturb_split`).
"""

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import input_pipeline
from data_pipelines import perturbations
from data_pipelines import role_graph
from data_pipelines import synthetic

TYPES = perturbations.PERTURBATIONS


def synthetic_twins(builder, split, config):
  """Template twins of the split's captions, as `perturb_split` returns them.

  Rows refer to the split's captions in `caption_dataset` order: videos in
  stored order, each video's captions in generation order.
  """
  params = synthetic.SyntheticParams(**config.synthetic.to_dict())
  ids = input_pipeline.video_ids(builder, split)
  stored = {v: i for i, v in enumerate(ids)}
  tokenizer = input_pipeline.tokenizer(builder)
  generated = {v['video_id']: v
               for v in synthetic.perturbed_captions(split, params)}
  if set(generated) != set(stored):
    raise ValueError(f'The stored {split!r} split does not match '
                     'config.synthetic; prepare the dataset again.')
  twins = {kind: ([], []) for kind in TYPES}
  first_row = 0
  for video_id in sorted(stored, key=stored.get):
    video = generated[video_id]
    for kind in TYPES:
      for i, (text, graph) in enumerate(video['perturbed'][kind]):
        twins[kind][0].append(role_graph.encode_caption(
            text, graph, tokenizer, config.max_words, config.num_verbs,
            config.num_nouns))
        twins[kind][1].append(first_row + i)
    first_row += len(video['captions'])
  return {kind: ({k: np.stack([c[k] for c in captions])
                  for k in input_pipeline.CAPTION_KEYS},
                 np.asarray(rows, np.int64))
          for kind, (captions, rows) in twins.items()}


def drop_identical_twins(captions, twins):
  """Leaves out twins whose words equal their true caption's.

  Such a twin (the role swap of "a car passes a car") is the true sentence
  with its graph's node slots permuted: the pair cannot be won, ties count as
  failures, and float rounding decides it.

  Args:
    captions: CAPTION_KEYS arrays with a leading (captions,) axis.
    twins: {type: (twin CAPTION_KEYS arrays, (twins,) row of the true
      caption)}, as `perturbations.perturb_split` returns them.

  Returns:
    (twins without those, {type: number left out}).
  """
  kept, dropped = {}, {}
  for kind, (twin_captions, rows) in twins.items():
    same = ((twin_captions['length'] == captions['length'][rows]) &
            (twin_captions['token_ids'] ==
             captions['token_ids'][rows]).all(-1))
    kept[kind] = ({k: v[~same] for k, v in twin_captions.items()}, rows[~same])
    dropped[kind] = int(same.sum())
  return kept, dropped


def accuracies(true_scores, twin_scores):
  """{type: (pairs,) true, (pairs,) twin} -> {binary_<type>: accuracy %}."""
  out = {}
  for kind, true in true_scores.items():
    out[f'binary_{kind}'] = 100.0 * float(np.mean(true > twin_scores[kind]))
    out[f'binary_{kind}_pairs'] = int(true.size)
  return out


def evaluate(evaluator, params, builder, split, config):
  """Binary selection accuracy of each type on `split`, by the fused score.

  Returns:
    {binary_<type>: accuracy in %, binary_<type>_pairs: number of pairs
    scored, binary_<type>_identical: twins left out because their words
    equal the true caption's}.
  """
  batch = evaluator.batch_size
  videos = evaluator.encode_videos(params, tfds.as_numpy(
      input_pipeline.video_dataset(builder, split, config, batch)))
  caption_batches = list(tfds.as_numpy(
      input_pipeline.caption_dataset(builder, split, batch)))
  captions = {k: np.concatenate([b[k] for b in caption_batches])
              for k in input_pipeline.CAPTION_KEYS}
  caption_video = np.concatenate([b['video_index'] for b in caption_batches])
  if config.dataset == 'synthetic':
    twins = synthetic_twins(builder, split, config)
  else:
    twins = perturbations.perturb_split(captions, caption_video, config.seed)
  twins, identical = drop_identical_twins(captions, twins)
  true_scores, twin_scores = {}, {}
  for kind, (twin_captions, rows) in twins.items():
    if not rows.size:
      continue
    pair_videos = caption_video[rows]
    true = {k: v[rows] for k, v in captions.items()}
    true_scores[kind] = evaluator.pair_scores(
        params, videos, pair_videos, [true])['fused']
    twin_scores[kind] = evaluator.pair_scores(
        params, videos, pair_videos, [twin_captions])['fused']
  results = accuracies(true_scores, twin_scores)
  results.update({f'binary_{kind}_identical': count
                  for kind, count in identical.items()})
  return results


def format_table(rows):
  """{name: metrics} -> text table of binary selection accuracies, each
  followed by the number of pairs scored."""
  width = max([len('model')] + [len(name) for name in rows])
  lines = ['  '.join([f"{'model':<{width}}"] +
                     [f'{t:>9} {"pairs":>6}' for t in TYPES])]
  for name, metrics in rows.items():
    cells = [f"{metrics.get(f'binary_{t}', float('nan')):>9.1f} "
             f"{metrics.get(f'binary_{t}_pairs', 0):>6d}" for t in TYPES]
    lines.append('  '.join([f'{name:<{width}}'] + cells))
  return '\n'.join(lines)
