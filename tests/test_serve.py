"""The search page: its JSON, thumbnails, and a real browser driving it."""

import contextlib
import io
import os
import shutil
import socket
import threading
import time

import h5py
import jax
import numpy as np
import pytest

from conftest import tiny_config
from conftest import zero_inputs
from data_pipelines import video_decoding
from data_pipelines import synthetic
from data_pipelines import tokenizers
from hgr_jax import export
from hgr_jax import models
from hgr_jax import search
from hgr_jax import serve

fastapi = pytest.importorskip('fastapi', reason="the search page needs "
                              "pip install -e '.[serve]'")
uvicorn = pytest.importorskip('uvicorn', reason="the search page needs "
                              "pip install -e '.[serve]'")
from fastapi import testclient  # noqa: E402  pylint: disable=g-import-not-at-top

CHROMIUM = shutil.which('chromium')
CHROMEDRIVER = shutil.which('chromedriver')
# Written when HGR_UPDATE_SCREENSHOT=1 (the README shows it); always to
# the test's temporary folder.
SCREENSHOT = os.path.join(os.path.dirname(__file__), os.pardir, 'docs',
                          'figures', 'search_page.png')


@pytest.fixture(scope='module')
def service(trained_workdir, tmp_path_factory):
  """The trained test HGR's export and an index of its test split."""
  config, workdir, _ = trained_workdir
  out = str(tmp_path_factory.mktemp('serve'))
  export.export_workdir(config, workdir, out + '/export')
  exported = export.load(out + '/export')
  search.build_index(exported, search.dataset_source(config, 'test'),
                     out + '/index', chunk_size=8, progress=False)
  return serve.SearchService(exported, search.Index(out + '/index', exported))


@pytest.fixture(scope='module')
def known_caption(trained_workdir, service):
  """(caption, its video): a test caption whose true video the service
  ranks first (the trained model ranks most of them first)."""
  config, _, _ = trained_workdir
  for video in synthetic.generate_split('test', search_params(config)):
    caption = video['captions'][0]
    if service.search(caption, 1)['results'][0]['video_id'] == video[
        'video_id']:
      return caption, video['video_id']
  raise AssertionError('The trained model ranks no first caption first.')


def search_params(config):
  return synthetic.SyntheticParams(**config.synthetic.to_dict())


def test_json_endpoint_and_errors(service, known_caption):
  client = testclient.TestClient(serve.make_app(service))
  caption, video = known_caption
  result = client.get('/api/search', params={'q': caption, 'k': 3}).json()
  assert [r['rank'] for r in result['results']] == [1, 2, 3]
  assert result['results'][0]['video_id'] == video
  assert set(result['results'][0]['scores']) == {'global', 'verb', 'noun',
                                                 'fused'}
  assert result['latency_ms'] > 0
  kinds = {slot['kind'] for slot in result['results'][0]['explain']}
  assert kinds == {'verb', 'noun'}
  # The same ranking as search itself.
  searcher = service.searcher
  query, = service.encoder.encode([caption])
  hits = searcher.search(searcher.encode([query]), 3)[0]
  assert [h.video_id for h in hits] == [r['video_id']
                                        for r in result['results']]
  for q, message in (('', 'is empty'), ('zzz qqq', 'unknown: zzz, qqq')):
    response = client.get('/api/search', params={'q': q})
    assert response.status_code == 400 and message in response.json()['error']
  page = client.get('/', params={'q': ' '}).text
  assert 'id="error"' in page and 'is empty' in page
  assert 'Traceback' not in page
  response = client.get('/api/search', params={'q': 'a dog', 'k': 'many'})
  assert response.status_code == 400 and 'k' in response.json()['error']
  # Nothing on the page comes from elsewhere, and FastAPI's CDN-backed
  # /docs is off.
  page = client.get('/', params={'q': caption}).text
  assert 'http://' not in page and 'https://' not in page
  assert client.get('/docs').status_code == 404


def _write_video(path, colours, fps=2):
  """One second of each colour (RGB), at `fps`."""
  av = pytest.importorskip('av')
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('mpeg4', rate=fps)
    stream.width, stream.height, stream.pix_fmt = 64, 48, 'yuv420p'
    for colour in colours:
      for _ in range(fps):
        image = np.broadcast_to(np.array(colour, np.uint8),
                                (48, 64, 3)).copy()
        container.mux(stream.encode(av.VideoFrame.from_ndarray(
            image, format='rgb24')))
    container.mux(stream.encode())


def test_thumbnails_of_videos_indexed_from_files(tmp_path):
  """An index of feature files that name their videos (as extract_features
  writes them) shows each matched frame, read from the video file."""
  colours = [(220, 30, 30), (30, 220, 30), (30, 30, 220)]
  video = tmp_path / 'clip.mp4'
  _write_video(video, colours)
  config = tiny_config('vsepp')
  feature_dim = config.synthetic.feature_dim
  model = models.create_model(config, max(synthetic.word2int().values()) + 1)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0),
                                  zero_inputs(config, feature_dim, 2))
  export.write_export(str(tmp_path / 'export'), config, variables,
                      tokenizers.TokenizerMetadata(
                          word2int=synthetic.word2int()), feature_dim)
  exported = export.load(str(tmp_path / 'export'))
  features = str(tmp_path / 'features.hdf5')
  rng = np.random.default_rng(0)
  with h5py.File(features, 'w') as f:
    # One feature row per second of the clip, at 0.0, 1.0 and 2.0 s.
    with_file = f.create_dataset('clip', data=rng.normal(
        size=(3, feature_dim)).astype(np.float32))
    with_file.attrs[video_decoding.VIDEO_FILE_ATTR] = str(video)
    with_file.attrs[video_decoding.FRAME_TIMES_ATTR] = [0.0, 1.0, 2.0]
    f['no_file'] = rng.normal(size=(4, feature_dim)).astype(np.float32)
  search.build_index(exported, search.hdf5_source(features),
                     str(tmp_path / 'index'), progress=False)
  index = search.Index(str(tmp_path / 'index'), exported)
  service = serve.SearchService(exported, index)
  client = testclient.TestClient(serve.make_app(service))
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for frame, colour in enumerate(colours):
    response = client.get(f'/thumbnail/0/{frame}.jpg')
    assert response.headers['content-type'] == 'image/jpeg'
    image = np.asarray(Image.open(io.BytesIO(response.content)),
                       np.float32)
    assert image.shape[1] == 160
    np.testing.assert_allclose(image.mean(axis=(0, 1)), colour, atol=25)
  assert client.get('/thumbnail/1/0.jpg').status_code == 404
  assert client.get('/thumbnail/0/3.jpg').status_code == 404
  assert client.get('/thumbnail/9/0.jpg').status_code == 404
  assert [service._has_video(r) for r in (0, 1)] == [True, False]  # pylint: disable=protected-access


@contextlib.contextmanager
def _running(app):
  """Serves `app` on a free localhost port in a thread; yields its URL."""
  sock = socket.socket()
  sock.bind(('127.0.0.1', 0))
  server = uvicorn.Server(uvicorn.Config(app, log_level='warning'))
  thread = threading.Thread(target=server.run, kwargs={'sockets': [sock]},
                            daemon=True)
  thread.start()
  deadline = time.time() + 30
  while not server.started:
    assert time.time() < deadline, 'The server did not start.'
    time.sleep(0.05)
  try:
    yield f'http://127.0.0.1:{sock.getsockname()[1]}/'
  finally:
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _browser(tmp_path):
  webdriver = pytest.importorskip(
      'selenium.webdriver', reason='selenium is not installed: pip install '
      "-e '.[test]'")
  if not CHROMIUM or not CHROMEDRIVER:
    pytest.skip('No browser: the browser test needs Debian\'s chromium and '
                'chromium-driver (apt-get install chromium chromium-driver; '
                '.ci/run installs them when it can).')
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for flag in ('--headless', '--no-sandbox', '--disable-gpu',
               '--disable-quic', '--no-first-run',
               '--disable-background-networking',
               '--disable-component-update', '--disable-sync',
               '--window-size=1200,900',
               f'--user-data-dir={tmp_path / "chromium_profile"}'):
    options.add_argument(flag)
  service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
  return webdriver.Chrome(options=options, service=service)


def test_search_page_in_a_browser(service, known_caption, tmp_path):
  from selenium.webdriver.common import by  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.support import expected_conditions  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.support import ui  # pylint: disable=g-import-not-at-top
  caption, video = known_caption
  driver = _browser(tmp_path)
  try:
    with _running(serve.make_app(service)) as url:
      driver.get(url)
      wait = ui.WebDriverWait(driver, 60)
      box = driver.find_element(by.By.ID, 'query')
      box.send_keys(caption)
      driver.find_element(by.By.ID, 'search').click()
      wait.until(expected_conditions.presence_of_element_located(
          (by.By.ID, 'results')))
      rows = driver.find_elements(by.By.CSS_SELECTOR, 'tr.result')
      assert len(rows) == 10
      first = rows[0].find_element(by.By.CLASS_NAME, 'video').text
      assert first == video
      assert 'verb "' in rows[0].find_element(by.By.CLASS_NAME,
                                              'explain').text
      assert ' ms ' in driver.find_element(by.By.ID, 'latency').text
      driver.save_screenshot(str(tmp_path / 'search_page.png'))
      if os.environ.get('HGR_UPDATE_SCREENSHOT') == '1':
        driver.save_screenshot(SCREENSHOT)

      box = driver.find_element(by.By.ID, 'query')
      box.clear()
      driver.find_element(by.By.ID, 'search').click()
      error = wait.until(expected_conditions.presence_of_element_located(
          (by.By.ID, 'error')))
      assert 'is empty: give a sentence' in error.text
      assert not driver.find_elements(by.By.ID, 'results')
  finally:
    driver.quit()
  assert os.path.getsize(tmp_path / 'search_page.png') > 10_000
