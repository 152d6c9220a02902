"""A tiny random CLIP checkpoint in the Hugging Face layout, for tests.

The weights come from `transformers.CLIPModel` (PyTorch, CPU), the reference
implementation, saved with `save_pretrained`; the tokenizer is a small BPE
trained with `tokenizers` on a few captions, with CLIP's special tokens and
end-of-word suffix.
"""

import json
import os

import numpy as np
import pytest

BOS, EOS = '<|startoftext|>', '<|endoftext|>'
SENTENCES = [
    'a man is throwing a ball to a dog',
    'a woman is riding a horse on the beach',
    'two people are cooking pasta in a kitchen',
    'a dog runs after a red ball',
    'a child plays with a cat on the floor',
    'someone is slicing a tomato with a knife',
]
TEXT_POSITIONS = 24


def make_tokenizer():
  """A BPE `tokenizers.Tokenizer` trained on SENTENCES (ids 0, 1: BOS, EOS)."""
  import tokenizers
  from tokenizers import models, normalizers, pre_tokenizers, processors
  from tokenizers import trainers
  tokenizer = tokenizers.Tokenizer(
      models.BPE(unk_token=EOS, end_of_word_suffix='</w>'))
  tokenizer.normalizer = normalizers.Sequence(
      [normalizers.NFC(), normalizers.Lowercase()])
  tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
  tokenizer.train_from_iterator(SENTENCES, trainers.BpeTrainer(
      vocab_size=120, special_tokens=[BOS, EOS], end_of_word_suffix='</w>',
      # Every lower-case word is then some pieces, none unknown.
      initial_alphabet=list('abcdefghijklmnopqrstuvwxyz'),
      show_progress=False))
  tokenizer.post_processor = processors.TemplateProcessing(
      single=f'{BOS} $A {EOS}',
      special_tokens=[(BOS, tokenizer.token_to_id(BOS)),
                      (EOS, tokenizer.token_to_id(EOS))])
  return tokenizer


def make_checkpoint(clip_dir, seed=0, image_size=32, patch_size=8):
  """Writes a tiny random CLIPModel and its tokenizer to `clip_dir`.

  Returns:
    The `transformers.CLIPModel`, in eval mode.
  """
  torch = pytest.importorskip('torch')
  transformers = pytest.importorskip('transformers')
  tokenizer = make_tokenizer()
  torch.manual_seed(seed)
  text = dict(vocab_size=tokenizer.get_vocab_size(), hidden_size=32,
              intermediate_size=37, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=TEXT_POSITIONS,
              bos_token_id=tokenizer.token_to_id(BOS),
              eos_token_id=tokenizer.token_to_id(EOS),
              pad_token_id=tokenizer.token_to_id(EOS))
  vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                num_attention_heads=4, image_size=image_size,
                patch_size=patch_size)
  config = transformers.CLIPConfig(text_config=text, vision_config=vision,
                                   projection_dim=24)
  model = transformers.CLIPModel(config).eval()
  model.save_pretrained(clip_dir, safe_serialization=True)
  tokenizer.save(os.path.join(clip_dir, 'tokenizer.json'))
  with open(os.path.join(clip_dir, 'preprocessor_config.json'), 'w') as f:
    json.dump({'image_mean': [0.5, 0.4, 0.3], 'image_std': [0.2, 0.25, 0.3]},
              f)
  return model


def reference_text(model, token_ids):
  """transformers' token states (batch, tokens, width) and text embeddings
  (batch, projection) of int arrays; it pools the first end-of-text token."""
  import torch
  with torch.no_grad():
    outputs = model.text_model(input_ids=torch.as_tensor(token_ids))
    return (outputs.last_hidden_state.numpy(),
            model.text_projection(outputs.pooler_output).numpy())


def reference_image(model, pixels):
  """transformers' image embeddings of (batch, size, size, 3) pixels."""
  import torch
  with torch.no_grad():
    nchw = torch.as_tensor(np.transpose(pixels, (0, 3, 1, 2)))
    pooled = model.vision_model(pixel_values=nchw).pooler_output
    return model.visual_projection(pooled).numpy()
