"""Text-to-video search: index a video collection with an export, query it.

  python -m hgr_jax.search index --export=EXPORT --features=FILE.hdf5 \
      --out=INDEX
  python -m hgr_jax.search index --export=EXPORT \
      --config=configs/synthetic.py --split=test --out=INDEX
  python -m hgr_jax.search query --export=EXPORT --index=INDEX \
      --query="a man throws a ball to a dog" --k=10 [--explain]
  python -m hgr_jax.search query --export=EXPORT --index=INDEX \
      --queries_file=queries.txt --candidates=0   # exhaustive

An index is a folder of shards, one per `--chunk_size` videos, each holding
the encoded videos (`index_format`): building skips shards already written,
so an interrupted run resumes, and ends with the first stage's ANN
(`first_stage`, FAISS IVF-PQ over the global vectors).

A query is parsed into its role graph (when the model uses one) and encoded
(`queries`), then ranked in two stages by default (`searcher`): the ANN (or,
with --first_stage=exact, a scan of every global vector) picks
`--candidates` videos by the global cosine, whose records are read from the
shards (one read each), and the model's full score re-ranks them.
`--candidates=0` scores every video with the full score instead. What
search needs to know of a model it asks the model (`search_hooks`).

Modules: index_format (layout, records), writer (indexing), reader
(`Index`), first_stage (exact and ANN), queries (text -> caption arrays),
searcher (two stages, re-rank, explain), cli (the command line).
"""

from hgr_jax.search.cli import format_results
from hgr_jax.search.first_stage import build_ann
from hgr_jax.search.first_stage import FIRST_STAGES
from hgr_jax.search.index_format import decode_records
from hgr_jax.search.index_format import encode_records
from hgr_jax.search.index_format import IDS_FILE
from hgr_jax.search.index_format import INDEX_FILE
from hgr_jax.search.index_format import RECORDS_FILE
from hgr_jax.search.index_format import SearchError
from hgr_jax.search.index_format import TOKEN_DTYPES
from hgr_jax.search.queries import Query
from hgr_jax.search.queries import QueryEncoder
from hgr_jax.search.queries import stack_queries
from hgr_jax.search.reader import Index
from hgr_jax.search.searcher import DEFAULT_CANDIDATES
from hgr_jax.search.searcher import explained_slots
from hgr_jax.search.searcher import Hit
from hgr_jax.search.searcher import Searcher
from hgr_jax.search.writer import build_index
from hgr_jax.search.writer import dataset_source
from hgr_jax.search.writer import hdf5_source
from hgr_jax.search.writer import VideoSource
