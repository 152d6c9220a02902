"""Model name -> model class, filled by each model module's `register`."""

MODELS = {}


def register(name):
  """Class decorator: `config.model_name = name` selects the class."""
  def add(cls):
    if name in MODELS:
      raise ValueError(f'Model name {name!r} is registered twice.')
    MODELS[name] = cls
    return cls
  return add


def get(name):
  """The class registered as `name`; a one-line error for unknown names."""
  if name not in MODELS:
    raise ValueError(f'Unknown config.model_name={name!r}; registered models: '
                     f'{", ".join(sorted(MODELS))}.')
  return MODELS[name]
