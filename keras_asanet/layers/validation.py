"""Argument checks shared by the layers: each error names the argument, the value received
and what was expected."""

import numbers

import keras


def standardize_data_format(data_format):
    """Returns `"channels_last"` / `"channels_first"`, resolving `None` to Keras' default."""
    if data_format is None:
        data_format = keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'; "
            f"received data_format={data_format!r}."
        )
    return data_format


def check_positive_int(value, name, allow_none=False):
    """Returns `value` if it is an int >= 1 (or None when allowed); raises a ValueError."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        expected = "None or an int >= 1" if allow_none else "an int >= 1"
        raise ValueError(f"`{name}` must be {expected}; received {name}={value!r}.")
    return int(value)


def check_positive_number(value, name):
    """Returns `value` as a float if it is a real number > 0; raises a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"`{name}` must be a number > 0; received {name}={value!r}.")
    return float(value)


def check_rank(shape, rank, layer_name, argument="inputs"):
    """Raises a ValueError unless `shape` has `rank` axes; returns it as a tuple."""
    shape = tuple(shape)
    if len(shape) != rank:
        raise ValueError(
            f"`{argument}` of {layer_name} must have rank {rank}; received shape {shape}."
        )
    return shape
