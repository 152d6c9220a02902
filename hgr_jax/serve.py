r"""A local search page over an index: type a sentence, see the videos.

  python -m hgr_jax.serve --export=EXPORT --index=INDEX [--port=8000]

Then open http://127.0.0.1:8000. The page shows the top-k videos with their
fused and per-level scores, the explain view (the frames each verb and noun
phrase, or each word and learned phrase for HCMI, matches best), thumbnails
of those frames when the index was built from video files
(`hgr_jax.extract_features`, then `hgr_jax.search index
--features=...`), and the query's latency. Programs use the JSON endpoint:

  GET /api/search?q=a+man+throws+a+ball&k=10  ->  {"query", "warnings",
      "latency_ms", "results": [{"rank", "video_id", "scores",
      "explain": [{"kind", "label", "unit", "tokens": [[n, w], ...]}]}]}

A small FastAPI app with one server-rendered page: no script, font or
style is fetched from anywhere (FastAPI's own /docs, which loads its assets
from a CDN, is switched off), so it works on a machine without internet.
Bad queries (empty, no known word) are shown on the page, or as
{"error": ...} with status 400; nothing ever returns a stack trace.
"""

import functools
import html
import io
import logging as logging_std
import sys
import threading
import time
import urllib.parse

from absl import app
from absl import flags
from absl import logging
import jax

from hgr_jax import export as export_lib
from hgr_jax import platform
from hgr_jax import search

_THUMBNAIL_WIDTH = 160

FLAGS = flags.FLAGS


def _define_flags():
  flags.DEFINE_string('export', None, 'Export directory (python -m '
                      'hgr_jax.export).')
  flags.DEFINE_string('index', None, 'Index folder (python -m hgr_jax.search '
                      'index).')
  flags.DEFINE_string('host', '127.0.0.1', 'Address to listen on.')
  flags.DEFINE_integer('port', 8000, 'Port to listen on.')
  flags.DEFINE_integer('k', 10, 'Results per query unless the page asks.')
  flags.DEFINE_integer('candidates', search.DEFAULT_CANDIDATES,
                       'Videos the first stage keeps for the full score.')
  flags.DEFINE_enum('first_stage', 'ann', search.FIRST_STAGES,
                    'ann (the index\'s FAISS IVF-PQ) or exact.')


class SearchService:
  """Queries an index and returns JSON-able results; one query at a time
  (the searcher reuses its candidate buffers).

  Args:
    exported: an `export.ExportedModel`.
    index: a `search.Index` built with it.
    candidates: first-stage videos re-ranked.
    first_stage: 'ann' or 'exact'.
  """

  def __init__(self, exported, index, candidates=search.DEFAULT_CANDIDATES,
               first_stage='ann'):
    self.index = index
    self.candidates = candidates
    self.encoder = search.QueryEncoder(exported)
    self.searcher = search.Searcher(exported, index, query_batch=1,
                                    first_stage=first_stage)
    self._lock = threading.Lock()

  def search(self, text, k=10):
    """The results of one query as a dict (see the module docstring).

    Raises:
      search.SearchError: the query is empty or has no known word.
    """
    with self._lock:
      start = time.perf_counter()
      query, = self.encoder.encode([text])
      encoded = self.searcher.encode([query])
      hits = self.searcher.search(encoded, k, self.candidates)[0]
      self.searcher.explain(hits, jax.tree.map(lambda x: x[0], encoded))
      latency = time.perf_counter() - start
    return {
        'query': text, 'warnings': query.warnings,
        'latency_ms': round(1000 * latency, 1),
        'results': [{
            'rank': rank, 'video_id': hit.video_id, 'row': hit.row,
            'scores': hit.scores, 'has_video': self._has_video(hit.row),
            'explain': [{'kind': kind, 'label': label, 'unit': unit,
                         'tokens': [[int(t), round(float(w), 4)]
                                    for t, w in tokens]}
                        for kind, label, unit, tokens in
                        search.explained_slots(query, hit,
                                               self.searcher.hooks)]}
                    for rank, hit in enumerate(hits, 1)]}

  def _has_video(self, row):
    return self.index.video_file(row) is not None

  @functools.lru_cache(maxsize=1024)
  def thumbnail(self, row, frame):
    """JPEG bytes of feature row `frame` of the video at index `row`, or
    None when the video was not indexed from a file (or is gone)."""
    source = self.index.video_file(row)
    if source is None or not 0 <= frame < len(source[1]):
      return None
    path, times = source
    try:
      image = _frame_at(path, times[frame])
    except (OSError, ValueError) as e:
      logging.warning('No thumbnail of %s at %.2f s: %s', path, times[frame],
                      e)
      return None
    if image is None:
      return None
    from PIL import Image  # pylint: disable=g-import-not-at-top
    picture = Image.fromarray(image)
    height = max(1, round(picture.height * _THUMBNAIL_WIDTH / picture.width))
    picture = picture.resize((_THUMBNAIL_WIDTH, height))
    out = io.BytesIO()
    picture.save(out, format='JPEG', quality=85)
    return out.getvalue()


def _frame_at(path, seconds):
  """(height, width, 3) uint8 RGB of the first frame at or after `seconds`
  in a video file (as `video_decoding.decode` picked it), or None."""
  import av  # pylint: disable=g-import-not-at-top
  with av.open(path) as container:
    stream = container.streams.video[0]
    if stream.time_base:
      container.seek(max(0, int(seconds / stream.time_base) - 1),
                     stream=stream, backward=True, any_frame=False)
    for index, frame in enumerate(container.decode(stream)):
      time_ = frame.time if frame.time is not None else index / float(
          stream.average_rate or 25)
      if time_ + 1e-6 >= seconds:
        return frame.to_ndarray(format='rgb24')
  return None


# --------------------------------------------------------------- the page --

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em;
       color: #222; }
form { display: flex; gap: .5em; margin-bottom: 1em; }
#query { flex: 1; font-size: 1.1em; padding: .4em; }
button { font-size: 1.1em; padding: .4em 1em; }
#error { color: #a00; background: #fee; padding: .6em; border-radius: 4px; }
.warning { color: #850; }
.meta { color: #666; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .35em .5em;
         text-align: left; vertical-align: top; }
td.score { font-variant-numeric: tabular-nums; text-align: right; }
.explain { font-size: .9em; color: #444; }
.explain img { height: 48px; margin-right: 2px; vertical-align: middle; }
"""


def _url(path, **params):
  return path + '?' + urllib.parse.urlencode(params)


def render_page(text=None, k=10, result=None, error=None):
  """The page: the query form, then the error or the results."""
  e = html.escape
  parts = [
      '<!doctype html><html><head><meta charset="utf-8">',
      '<title>hgr_jax search</title>', f'<style>{_STYLE}</style>',
      '</head><body><h1>Text-to-video search</h1>',
      '<form method="get" action="/">',
      f'<input id="query" name="q" value="{e(text or "")}" '
      'placeholder="a man throws a ball to a dog" autofocus>',
      f'<input id="k" name="k" type="number" min="1" max="100" '
      f'value="{int(k)}" style="width:4em">',
      '<button id="search" type="submit">Search</button></form>']
  if error:
    parts.append(f'<p id="error">{e(error)}</p>')
  if result:
    parts += [f'<p class="warning">Warning: {e(w)}</p>'
              for w in result['warnings']]
    parts.append(
        f'<p class="meta" id="latency">{len(result["results"])} videos in '
        f'{result["latency_ms"]:.0f} ms (parse, encode, search, '
        f'explain).</p>')
    levels = [level for level in result['results'][0]['scores']
              if level != 'fused'] if result['results'] else []
    parts.append('<table id="results"><tr><th>rank</th><th>video</th>'
                 '<th>fused</th>' + ''.join(f'<th>{e(level)}</th>'
                                            for level in levels) +
                 '<th>best matching frames</th></tr>')
    for hit in result['results']:
      parts.append(
          f'<tr class="result"><td>{hit["rank"]}</td>'
          f'<td class="video">{e(hit["video_id"])}</td>'
          f'<td class="score"><b>{hit["scores"]["fused"]:.4f}</b></td>' +
          ''.join(f'<td class="score">{hit["scores"][level]:.4f}</td>'
                  for level in levels) +
          f'<td class="explain">{_explain_html(hit)}</td></tr>')
    parts.append('</table>')
  parts.append('</body></html>')
  return '\n'.join(parts)


def _explain_html(hit):
  e = html.escape
  lines = []
  for slot in hit['explain']:
    tokens = []
    for token, weight in slot['tokens']:
      image = ''
      if hit['has_video'] and slot['unit'] == 'frame':
        image = (f'<img alt="frame {token}" src="/thumbnail/{hit["row"]}/'
                 f'{token}.jpg">')
      tokens.append(f'{image}{e(slot["unit"])} {token} ({weight:.2f})')
    lines.append(f'{e(slot["kind"])} {e(slot["label"])}: ' +
                 ', '.join(tokens))
  return '<br>'.join(lines)


def make_app(service, default_k=10):
  """The FastAPI app of a `SearchService`."""
  import fastapi  # pylint: disable=g-import-not-at-top
  from fastapi import responses  # pylint: disable=g-import-not-at-top

  api = fastapi.FastAPI(title='hgr_jax search', docs_url=None,
                        redoc_url=None, openapi_url=None)

  def run(text, k):
    try:
      return service.search(text, max(1, min(int(k), 100))), None
    except search.SearchError as e:
      return None, str(e)
    except Exception as e:  # pylint: disable=broad-except
      # A bug, not the user's input: logged here, one line on the page.
      logging.exception('Search of %r failed.', text)
      return None, f'Search failed ({type(e).__name__}: {e}).'

  @api.get('/', response_class=responses.HTMLResponse)
  def page(q: str = None, k: int = default_k):
    if q is None:
      return render_page(k=k)
    result, error = run(q, k)
    return render_page(q, k, result, error)

  @api.get('/api/search')
  def api_search(q: str = '', k: int = default_k):
    result, error = run(q, k)
    if error:
      return responses.JSONResponse({'error': error}, status_code=400)
    return result

  @api.get('/thumbnail/{row}/{frame}.jpg')
  def thumbnail(row: int, frame: int):
    data = (service.thumbnail(row, frame)
            if 0 <= row < len(service.index) else None)
    if data is None:
      return responses.Response(status_code=404)
    return responses.Response(data, media_type='image/jpeg')

  @api.exception_handler(fastapi.exceptions.RequestValidationError)
  def bad_request(request, error):
    del request
    message = '; '.join(f'{".".join(map(str, e["loc"][1:]))}: {e["msg"]}'
                        for e in error.errors())
    return responses.JSONResponse({'error': message}, status_code=400)

  return api


def main(argv):
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  if len(argv) > 1:
    sys.exit(f'Unexpected arguments: {argv[1:]}')
  if not FLAGS.export or not FLAGS.index:
    sys.exit('Error: --export=EXPORT and --index=INDEX are required '
             '(python -m hgr_jax.export, python -m hgr_jax.search index).')
  try:
    import fastapi  # pylint: disable=g-import-not-at-top,unused-import
    import uvicorn  # pylint: disable=g-import-not-at-top
  except ImportError:
    sys.exit("Error: the search page needs FastAPI and uvicorn: pip install "
             "-e '.[serve]'")
  logging.set_verbosity(logging.WARNING)
  try:
    exported = export_lib.load(FLAGS.export)
    service = SearchService(exported, search.Index(FLAGS.index, exported),
                            FLAGS.candidates, FLAGS.first_stage)
  except (search.SearchError, export_lib.ExportError) as e:
    sys.exit(f'Error: {e}')
  logging_std.getLogger('uvicorn.access').setLevel(logging_std.WARNING)
  print(f'Search page: http://{FLAGS.host}:{FLAGS.port}/', flush=True)
  uvicorn.run(make_app(service, FLAGS.k), host=FLAGS.host, port=FLAGS.port,
              log_level='warning')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
