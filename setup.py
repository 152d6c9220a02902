"""hgr_jax: hierarchical video-text retrieval (HGR, HANet, HCMI, VSE++) in JAX."""

import pathlib

import setuptools

# Caption -> role graph parsing; also the whole light install of the parser
# (see requirements-parse.txt and the README).
_PARSE = [line for line in pathlib.Path(__file__).with_name(
    'requirements-parse.txt').read_text().splitlines()
          if line.strip() and not line.startswith('#')]
_SERVING = ['orbax-export>=0.0.8']
# The search page (python -m hgr_jax.serve); Pillow makes its thumbnails.
_SERVE = ['fastapi', 'uvicorn', 'pillow']
# The browser test of the search page drives Debian's chromium with it.
_BROWSER_TEST = ['selenium', 'httpx']
# The notebooks of colabs/: figures, and the parser for search queries.
_COLAB = ['matplotlib'] + _PARSE
# Decodes video files for hgr_jax.extract_features.
_VIDEO = ['av']
# The reference CLIP (PyTorch, CPU) of the parity tests; the library never
# imports it. torch is pinned exactly: that pin resolves to a CPU wheel,
# any other spec pulls the CUDA build.
_CLIP_REFERENCE = ['torch==2.13.0', 'transformers']

setuptools.setup(
    name='hgr_jax',
    version='0.1.0',
    description='Fine-grained video-text retrieval in JAX/Flax.',
    packages=setuptools.find_packages(include=['hgr_jax', 'hgr_jax.*',
                                               'data_pipelines',
                                               'data_pipelines.*']),
    python_requires='>=3.10',
    install_requires=[
        'absl-py',
        'clu>=0.0.12',
        'faiss-cpu>=1.15',  # Search's first stage (IVF-PQ).
        'flax>=0.12',
        'h5py',  # The HGR/HANet release stores frame features in HDF5.
        'importlib_resources',  # tensorflow-datasets imports it without requiring it.
        'jax>=0.7',
        'lemminflect',  # HANet's concepts; the lexicon ships in the wheel.
        'ml_collections',
        'numpy',
        'optax',
        'orbax-checkpoint>=0.11',
        'safetensors',  # CLIP checkpoints, read with its NumPy API.
        'sentencepiece',
        'tensorboard',  # clu.metric_writers writes TensorBoard summaries.
        'tensorflow-cpu',  # tf.data only; JAX owns the accelerators.
        'tensorflow-datasets',
        'tokenizers',  # CLIP's BPE, from a checkpoint's tokenizer.json.
        'tqdm',  # Progress of search indexing.
    ],
    entry_points={'console_scripts': [
        'hgr-parse-captions = data_pipelines.parse_captions:run']},
    extras_require={
        'parse': _PARSE,
        # The export's optional TensorFlow SavedModel of the encoders.
        'serving': _SERVING,
        'serve': _SERVE,
        # benchmarks/ann_compare.py measures ScaNN beside FAISS.
        'ann_benchmark': ['scann==1.4.0'],
        'colab': _COLAB,
        'video': _VIDEO,
        # The parser, SavedModel, video and CLIP parity tests run in CI too,
        # and the notebooks are executed headless.
        'test': (['import-linter', 'pytest', 'pytest-timeout', 'pytest-xdist',
                  'hypothesis', 'nbclient', 'nbformat', 'ipykernel'] + _PARSE +
                 _SERVING + _COLAB + _VIDEO + _CLIP_REFERENCE + _SERVE +
                 _BROWSER_TEST),
    },
)
