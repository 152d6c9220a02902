"""A trained model as a self-contained inference package, and its loader.

  python -m hgr_jax.export --config=configs/synthetic.py --workdir=/tmp/hgr \
      --out=/tmp/hgr_export

The package holds what encoding new videos and captions needs, nothing of
training (no optimiser state, no dataset):

  EXPORT/manifest.json     model name, input sizes, tokenizer kind, the
                           content hash, the source workdir and step
  EXPORT/config.json       the experiment config; the model is rebuilt from it
                           through `models.create_model`
  EXPORT/tokenizer/        the dataset's metadata.json (vocabulary) and the
                           tokenizer's own files (e.g. sentencepiece.model)
  EXPORT/variables/        orbax checkpoint of {'params', 'batch_stats'}

`load(EXPORT)` returns an `ExportedModel` with jit-compiled encoders and
scorer. The content hash covers the config, the tokenizer files and every
variable (path, dtype, shape, bytes); indexes record it, so that an index is
never searched with another model's queries.
"""

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import sys
from typing import Any, Dict

from absl import app
from absl import flags
import jax
import ml_collections
from ml_collections import config_flags
import numpy as np
import orbax.checkpoint as ocp

from data_pipelines import release_layout
from data_pipelines import tokenizers
from hgr_jax import models
from hgr_jax import platform
from hgr_jax import train

FORMAT_VERSION = 1
MANIFEST_FILE = 'manifest.json'
CONFIG_FILE = 'config.json'
TOKENIZER_DIR = 'tokenizer'
VARIABLES_DIR = 'variables'
SAVED_MODEL_DIR = 'saved_model'  # Optional; outside the content hash.


class ExportError(ValueError):
  """An export directory is missing, incomplete or was modified."""


def variables_hash(variables) -> str:
  """SHA-256 over every leaf's path, dtype, shape and bytes, in tree order."""
  digest = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
    leaf = np.asarray(leaf)
    digest.update(jax.tree_util.keystr(path).encode())
    digest.update(f'{leaf.dtype}{leaf.shape}'.encode())
    digest.update(np.ascontiguousarray(leaf).tobytes())
  return digest.hexdigest()


def _files_hash(directory) -> str:
  """SHA-256 over the names and bytes of the files of `directory`, sorted."""
  digest = hashlib.sha256()
  for name in sorted(os.listdir(directory)):
    digest.update(name.encode())
    with open(os.path.join(directory, name), 'rb') as f:
      digest.update(f.read())
  return digest.hexdigest()


def content_hash(config_json: str, tokenizer_dir: str, variables) -> str:
  """The export's identity: config, tokenizer files and variables."""
  digest = hashlib.sha256()
  for part in (config_json, _files_hash(tokenizer_dir),
               variables_hash(variables)):
    digest.update(part.encode())
  return digest.hexdigest()


def best_variables(config, workdir):
  """(variables, step, builder, feature_dim) of the workdir's best checkpoint.

  Only {'params', 'batch_stats'} are kept; the optimiser state is dropped.
  """
  builder, model, mesh = train.setup(config)
  manager = train.checkpoint_manager(workdir)
  step = manager.best_step()
  if step is None:
    raise FileNotFoundError(
        f'No checkpoint in {os.path.join(workdir, "checkpoints")}: train '
        f'first (python -m hgr_jax.main --config=... --workdir={workdir}).')
  element_spec = train.train_batches(
      builder, model, config, 0,
      config.batch_size // jax.process_count()).element_spec
  state = train.create_train_state(model, config, element_spec, mesh)
  state, _ = train.restore(manager, step, state)
  feature_dim = builder.info.features['frames'].shape[-1]
  return jax.device_get(state.variables), int(step), builder, feature_dim


def write_export(out, config, variables, tokenizer_metadata, feature_dim,
                 source=None):
  """Writes an export package to `out` (replaced if it exists).

  Args:
    out: the export directory.
    config: the experiment config the variables were trained with.
    variables: {'params', 'batch_stats'} of the model.
    tokenizer_metadata: the dataset's `tokenizers.TokenizerMetadata`.
    feature_dim: per-frame feature size the video encoder expects.
    source: JSON-able provenance (workdir, step) for the manifest.

  Returns:
    The manifest dict.
  """
  out = os.path.abspath(out)
  staging = out + '.partial'
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(os.path.join(staging, TOKENIZER_DIR))
  config_json = config.to_json(sort_keys=True, indent=2)
  with open(os.path.join(staging, CONFIG_FILE), 'w') as f:
    f.write(config_json)
  tokenizer_dir = os.path.join(staging, TOKENIZER_DIR)
  tokenizer_metadata.save_metadata(tokenizer_dir)
  variables = {'params': variables['params'],
               'batch_stats': variables.get('batch_stats', {})}
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(staging, VARIABLES_DIR), variables)
  checkpointer.wait_until_finished()
  vocab = dict(tokenizer_metadata['word2int'])
  manifest = {
      'format_version': FORMAT_VERSION,
      'model_name': config.model_name,
      'feature_dim': int(feature_dim),
      'max_frames': config.max_frames,
      'max_words': config.max_words,
      'num_verbs': config.num_verbs,
      'num_nouns': config.num_nouns,
      'vocab_size': max(vocab.values()) + 1,
      'tokenizer': dict(tokenizer_metadata.get('tokenizer',
                                               {'kind': 'word'})),
      'content_hash': content_hash(config_json, tokenizer_dir, variables),
      'source': source or {},
  }
  with open(os.path.join(staging, MANIFEST_FILE), 'w') as f:
    json.dump(manifest, f, indent=2, sort_keys=True)
  # Whole or nothing: a crash leaves only the .partial folder behind.
  shutil.rmtree(out, ignore_errors=True)
  os.rename(staging, out)
  return manifest


def export_workdir(config, workdir, out):
  """Exports the best checkpoint of `workdir`; returns the manifest."""
  variables, step, builder, feature_dim = best_variables(config, workdir)
  return write_export(out, config, variables, builder.info.metadata,
                      feature_dim, {'workdir': os.path.abspath(workdir),
                                    'step': step})


@dataclasses.dataclass
class ExportedModel:
  """A loaded export: the model, its variables, tokenizer and jitted calls.

  encode_video(frames (videos, max_frames, feature_dim) float32, frame_mask
  (videos, max_frames) bool) -> dict of encoded arrays; encode_text(dict of
  the caption arrays of `input_pipeline.CAPTION_KEYS`, leading (captions,))
  -> dict; scores(encoded videos, encoded captions) -> dict of (videos,
  captions) score matrices with 'fused'. Each compiles once per input shape.
  """
  path: str
  manifest: Dict[str, Any]
  config: ml_collections.ConfigDict
  model: Any
  variables: Any
  tokenizer: Any

  def __post_init__(self):
    model = self.model
    # The variables are arguments, not constants baked into the programs.
    bind = lambda method: functools.partial(jax.jit(functools.partial(
        model.apply, method=method)), self.variables)
    self.encode_video = bind(model.encode_video)
    self.encode_text = bind(model.encode_text)
    self.scores = bind(model.scores)

  @property
  def content_hash(self):
    return self.manifest['content_hash']

  @property
  def name(self):
    return self.manifest['model_name']


def _read_json(path, what):
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError as e:
    raise ExportError(f'{path} is missing: {what}. Export again with '
                      'python -m hgr_jax.export.') from e
  except json.JSONDecodeError as e:
    raise ExportError(f'{path} is not valid JSON ({e}): export again.') from e


def load(path, verify=True) -> ExportedModel:
  """Loads an export written by `write_export`.

  Args:
    path: the export directory.
    verify: recompute the content hash and refuse a modified export.

  Raises:
    ExportError: the directory is not a complete, unmodified export.
  """
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise ExportError(f'--export={path} does not exist: write one with '
                      'python -m hgr_jax.export --config=... --workdir=... '
                      f'--out={path}.')
  manifest = _read_json(os.path.join(path, MANIFEST_FILE), 'not an export')
  if manifest.get('format_version') != FORMAT_VERSION:
    raise ExportError(f'{path} has export format '
                      f'{manifest.get("format_version")}, this code reads '
                      f'{FORMAT_VERSION}: export again with this version.')
  with open(os.path.join(path, CONFIG_FILE)) as f:
    config_json = f.read()
  config = ml_collections.ConfigDict(json.loads(config_json))
  metadata = tokenizers.TokenizerMetadata()
  metadata.load_metadata(os.path.join(path, TOKENIZER_DIR))
  variables = ocp.StandardCheckpointer().restore(
      os.path.join(path, VARIABLES_DIR))
  variables = jax.tree.map(np.asarray, variables)
  if verify and content_hash(config_json, os.path.join(path, TOKENIZER_DIR),
                             variables) != manifest['content_hash']:
    raise ExportError(f'{path} was modified after it was exported (content '
                      'hash differs from manifest.json): export again.')
  model = models.create_model(config, manifest['vocab_size'])
  return ExportedModel(path, manifest, config, model,
                       jax.device_put(variables),
                       tokenizers.for_metadata(metadata))


def write_saved_model(exported, out):
  """The two encoders as a TensorFlow SavedModel (orbax-export, jax2tf).

  Signatures 'encode_video' (frames (b, max_frames, feature_dim) float32,
  frame_mask (b, max_frames) bool) and 'encode_text' (the caption arrays of
  `input_pipeline.CAPTION_KEYS`, leading (b,)) return the encoded dicts;
  the batch size b is free. Plain TensorFlow loads it
  (`tf.saved_model.load(out).signatures['encode_video'](...)`). Needs the
  `serving` extra (orbax-export).
  """
  # pylint: disable=g-import-not-at-top
  try:
    from orbax import export as orbax_export
  except ImportError as e:
    raise ExportError("A SavedModel needs orbax-export: pip install -e "
                      "'.[serving]'.") from e
  import tensorflow as tf
  # pylint: enable=g-import-not-at-top
  model, manifest = exported.model, exported.manifest
  frames, words = manifest['max_frames'], manifest['max_words']
  verbs, nouns = manifest['num_verbs'], manifest['num_nouns']
  nodes = 1 + verbs + nouns
  video_spec = {
      'frames': tf.TensorSpec([None, frames, manifest['feature_dim']],
                              tf.float32, 'frames'),
      'frame_mask': tf.TensorSpec([None, frames], tf.bool, 'frame_mask')}
  text_spec = {
      'token_ids': tf.TensorSpec([None, words], tf.int32, 'token_ids'),
      'length': tf.TensorSpec([None], tf.int32, 'length'),
      'verb_masks': tf.TensorSpec([None, verbs, words], tf.bool,
                                  'verb_masks'),
      'noun_masks': tf.TensorSpec([None, nouns, words], tf.bool,
                                  'noun_masks'),
      'node_roles': tf.TensorSpec([None, verbs + nouns], tf.int32,
                                  'node_roles'),
      'adjacency': tf.TensorSpec([None, nodes, nodes], tf.float32,
                                 'adjacency')}
  batch_polymorphic = lambda spec: {k: '(b, ...)' for k in spec}
  module = orbax_export.JaxModule(
      exported.variables,
      {'encode_video': lambda v, x: model.apply(
          v, x['frames'], x['frame_mask'], method=model.encode_video),
       'encode_text': lambda v, x: model.apply(v, x,
                                               method=model.encode_text)},
      input_polymorphic_shape={'encode_video': batch_polymorphic(video_spec),
                               'encode_text': batch_polymorphic(text_spec)})
  manager = orbax_export.ExportManager(module, [
      orbax_export.ServingConfig('encode_video', input_signature=[video_spec],
                                 method_key='encode_video'),
      orbax_export.ServingConfig('encode_text', input_signature=[text_spec],
                                 method_key='encode_text')])
  manager.save(out)


FLAGS = flags.FLAGS


def _define_flags():
  config_flags.DEFINE_config_file(
      'config', None, 'The experiment config the workdir was trained with.',
      lock_config=True)
  flags.DEFINE_string('workdir', None, 'Training workdir (its best '
                      'checkpoint is exported).')
  flags.DEFINE_string('out', None, 'Export directory to write (replaced).')
  flags.DEFINE_bool('saved_model', False, 'Also write the two encoders as a '
                    'TensorFlow SavedModel under OUT/saved_model (needs the '
                    'serving extra).')
  flags.mark_flags_as_required(['config', 'workdir', 'out'])


def main(argv):
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  try:
    manifest = export_workdir(FLAGS.config, FLAGS.workdir, FLAGS.out)
    if FLAGS.saved_model:
      write_saved_model(load(FLAGS.out),
                        os.path.join(FLAGS.out, SAVED_MODEL_DIR))
  except (FileNotFoundError, release_layout.ReleaseError, ExportError) as e:
    sys.exit(f'Error: {e}')
  print(f'Exported {manifest["model_name"]} step '
        f'{manifest["source"]["step"]} to {os.path.abspath(FLAGS.out)} '
        f'(content hash {manifest["content_hash"][:12]}).')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
