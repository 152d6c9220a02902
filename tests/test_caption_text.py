"""Tests for the release's caption normalisation (no spaCy needed)."""

import pytest

from data_pipelines import caption_text


@pytest.mark.parametrize('raw, normalised', [
    # Lower-case, punctuation removed, one space between words.
    ('A Man Is Running.', 'a man is running'),
    ('  Two   men,  fighting!! ', 'two men fighting'),
    # "n't" joined to its verb, other apostrophes split (as in the MSVD
    # release: "dating do's and dont's" -> "dating do s and dont s").
    ("Don't stop", 'dont stop'),
    ("dating do's and dont's", 'dating do s and dont s'),
    ('A man\u2019s hat', 'a man s hat'),
    # A hyphen inside a word joins it ("push-ups" -> "pushups"); others
    # separate.
    ('one-armed push-ups - fast', 'onearmed pushups fast'),
    ('a cd/dvd', 'a cd dvd'),
    ('', ''),
])
def test_normalise(raw, normalised):
  assert caption_text.normalise(raw) == normalised


def test_normalised_caption_is_a_fixed_point():
  caption = 'a man s hat is 10 feet long'
  assert caption_text.normalise(caption) == caption
