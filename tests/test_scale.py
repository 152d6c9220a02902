"""Training in other processes: two processes against one (of as many
devices, and of one device), a run killed between checkpoints and resumed
against an uninterrupted one, a save killed half-way. Each run is
`tests/train_runner.py` on tests/tiny_train_config.py.
"""

import glob
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hgr_jax import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICES = 4
CHECKPOINT_EVERY = 10  # tests/tiny_train_config.py


def _start(workdir, data_dir, devices, *flags, out=None):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             JAX_CPU_COLLECTIVES_IMPLEMENTATION='gloo',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  out = out or workdir
  command = [sys.executable, '-m', 'tests.train_runner',
             '--config=tests/tiny_train_config.py', f'--workdir={workdir}',
             f'--config.data_dir={data_dir}', f'--losses={out}.losses',
             f'--restored_params={out}.params', *flags]
  log = open(f'{out}.log', 'w')  # pylint: disable=consider-using-with
  return subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                          stderr=subprocess.STDOUT)


def _finish(process, out, returncode=0):
  assert process.wait(timeout=600) == returncode, open(f'{out}.log').read()[
      -3000:]


def _losses(out):
  with open(f'{out}.losses') as f:
    return {int(step): float(loss) for step, loss in map(str.split, f)}


def _params(out, process=0):
  return dict(np.load(f'{out}.params.{process}.npz'))


@pytest.fixture(scope='module')
def reference(tiny_data_dir, tmp_path_factory):
  """One process holding 4 devices, reading the data as 2 processes would."""
  out = str(tmp_path_factory.mktemp('reference') / 'run')
  _finish(_start(out, tiny_data_dir, DEVICES, '--emulate_processes=2'), out)
  return out


@pytest.fixture(scope='module')
def one_device(tiny_data_dir, tmp_path_factory):
  """One process on one device, reading the data as 2 processes would."""
  out = str(tmp_path_factory.mktemp('one_device') / 'run')
  _finish(_start(out, tiny_data_dir, 1, '--emulate_processes=2'), out)
  return out


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_two_processes_train_as_one(reference, one_device, tiny_data_dir,
                                    tmp_path):
  workdir = str(tmp_path / 'workdir')
  address = f'--coordinator_address=127.0.0.1:{_free_port()}'
  processes = [
      _start(workdir, tiny_data_dir, DEVICES // 2, address,
             '--num_processes=2', f'--process_id={index}',
             out=str(tmp_path / f'process{index}'))
      for index in range(2)]
  for index, process in enumerate(processes):
    _finish(process, str(tmp_path / f'process{index}'))

  expected = _losses(reference)
  losses = _losses(str(tmp_path / 'process0'))
  assert sorted(losses) == sorted(expected)
  np.testing.assert_allclose([losses[s] for s in sorted(expected)],
                             [expected[s] for s in sorted(expected)],
                             rtol=1e-5)
  # And as one device: 4 devices (each with 2 captions, packed in one row)
  # and 1 compute the same steps up to float32 rounding.
  single = _losses(one_device)
  assert sorted(single) == sorted(expected)
  np.testing.assert_allclose([losses[s] for s in sorted(single)],
                             [single[s] for s in sorted(single)], rtol=1e-4)
  assert not os.path.exists(str(tmp_path / 'process1.losses'))
  # Each process restored the trained state from the checkpoint both wrote.
  reference_params = _params(reference)
  single_params = _params(one_device)
  for index in range(2):
    params = _params(str(tmp_path / f'process{index}'), index)
    assert params.keys() == reference_params.keys() == single_params.keys()
    for name, value in params.items():
      np.testing.assert_allclose(value, reference_params[name], atol=1e-5,
                                 err_msg=name)
      np.testing.assert_allclose(value, single_params[name], atol=1e-4,
                                 err_msg=f'{name}, against one device')
  # Only process 0 writes summaries and metrics.
  assert len(glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))) == 1
  assert os.path.exists(os.path.join(workdir, train.TEST_METRICS_FILE))
  steps = train.checkpoint_manager(reference).all_steps()
  assert train.checkpoint_manager(workdir).all_steps() == steps


def test_run_killed_between_checkpoints_resumes_exactly(reference,
                                                        tiny_data_dir,
                                                        tmp_path):
  expected = _losses(reference)
  last_step = max(expected)
  kill_at = random.choice([s for s in range(CHECKPOINT_EVERY + 1, last_step)
                           if s % CHECKPOINT_EVERY])
  workdir = str(tmp_path / 'workdir')
  killed = str(tmp_path / 'killed')
  _finish(_start(workdir, tiny_data_dir, DEVICES, '--emulate_processes=2',
                 f'--kill_at_step={kill_at}', out=killed), killed,
          returncode=-signal.SIGKILL)
  assert max(_losses(killed)) == kill_at
  resumed = str(tmp_path / 'resumed')
  _finish(_start(workdir, tiny_data_dir, DEVICES, '--emulate_processes=2',
                 out=resumed), resumed)

  losses = _losses(resumed)
  restored_step = min(losses) - 1
  assert restored_step % CHECKPOINT_EVERY == 0 and restored_step < kill_at, (
      kill_at, restored_step)
  assert losses == {s: expected[s] for s in range(restored_step + 1,
                                                  last_step + 1)}, kill_at
  reference_params = _params(reference)
  for name, value in _params(resumed).items():
    np.testing.assert_array_equal(value, reference_params[name],
                                  err_msg=f'{name}, killed at {kill_at}')


_SAVE_AND_DIE = textwrap.dedent('''
    import os, signal, sys
    import numpy as np
    from hgr_jax import train
    manager = train.checkpoint_manager(sys.argv[1], keep_latest=5)
    state = {'w': np.full((16, 1024, 1024), 1.0, np.float32)}
    train.save(manager, 1, state, epoch=0, batches=1)
    manager.wait_until_finished()
    train.save(manager, 2, {'w': state['w'] + 1}, epoch=0, batches=2)
    os.kill(os.getpid(), signal.SIGKILL)  # The save of step 2 is under way.
''')


def test_kill_during_a_save_leaves_the_previous_checkpoint(tmp_path):
  workdir = str(tmp_path)
  process = subprocess.run([sys.executable, '-c', _SAVE_AND_DIE, workdir],
                           cwd=REPO, env=dict(os.environ, JAX_PLATFORMS='cpu'),
                           capture_output=True, text=True, timeout=300)
  assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]
  entries = os.listdir(os.path.join(workdir, 'checkpoints'))
  assert any(e.startswith('2') and 'tmp' in e for e in entries), entries
  manager = train.checkpoint_manager(workdir, keep_latest=5)
  assert manager.all_steps() == [1]
  state = {'w': np.zeros((16, 1024, 1024), np.float32)}
  restored, progress = train.restore(manager, 1, state)
  assert progress == {'epoch': 0, 'batches': 1}
  assert (restored['w'] == 1).all()
  # The step can be saved again, as a resumed run does.
  train.save(manager, 2, state, epoch=0, batches=2)
  manager.wait_until_finished()
  assert manager.all_steps() == [1, 2]
