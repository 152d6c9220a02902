"""Benchmark phases run each in a fresh process (so that peak memory and
timings are the phase's own), with the results kept in one JSON file."""

import json
import os
import subprocess
import sys


def run_phase(module, phase, *extra_flags):
  """Runs `python -m module --phase=phase` with this process's flags (but
  --phases) and `extra_flags`; returns the JSON its last stdout line holds.

  Raises:
    RuntimeError: the phase failed (its log went to stderr).
  """
  command = [sys.executable, '-m', module, f'--phase={phase}', *extra_flags,
             *(a for a in sys.argv[1:] if not a.startswith('--phases'))]
  done = subprocess.run(command, stdout=subprocess.PIPE, text=True,
                        check=False)
  if done.returncode:
    raise RuntimeError(f'{phase} failed (its log is above).')
  return json.loads(done.stdout.strip().splitlines()[-1])


def run_worker(functions, phase, *args):
  """The worker side of `run_phase`: prints phase `phase`'s JSON result."""
  print(json.dumps(functions[phase](*args)))


def start(workdir, path):
  """Makes `workdir`; returns the results of earlier runs in `path`, or {}."""
  os.makedirs(workdir, exist_ok=True)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def save_results(path, results):
  with open(path, 'w') as f:
    json.dump(results, f, indent=2)
