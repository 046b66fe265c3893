"""Weights files written by earlier versions of `ASANet`, read into today's model.

Why it exists: until the centres of the centre loss moved into the model itself, an `ASANet`
kept them inside a `CenterLoss` object (`model.center_loss.centers_layer`), so `.keras` and
`.weights.h5` files store them under `center_loss/centers_layer/vars/0`. Today's model owns a
`ClassCenters` layer, stored under `class_centers/vars/0`. Keras loads state by attribute
path, so without this an old file (the tutorials' asset model, every checkpoint of an older
run) fails to load. The variable itself (`center_loss_centers/centers`) kept its name.
"""

#: Where files written before the centres moved into the model keep them.
LEGACY_CENTERS_PATH = "center_loss/centers_layer"
#: Where today's files keep them (the attribute `ASANet.class_centers`).
CENTERS_PATH = "class_centers"


def legacy_centers(store):
    """The centre table of an old-layout weights file, or None for a file of today's layout.

    Args:
        store: the Keras weights store handed to `ASANet.load_own_variables` (an H5 store of a
            `.keras` or `.weights.h5` file; other stores have no legacy layout).

    Returns:
        A numpy `(num_classes, feature_dim)` array, or None.
    """
    has_path = getattr(store, "has_path", None)
    if has_path is None or has_path(CENTERS_PATH) or not has_path(LEGACY_CENTERS_PATH):
        return None
    entry = store.get(LEGACY_CENTERS_PATH)
    if "0" not in entry:
        raise ValueError(
            f"The weights file has a {LEGACY_CENTERS_PATH!r} group (an ASANet written before "
            "the centres moved into the model) but no centre table in it: the file is "
            "damaged."
        )
    return entry["0"]
