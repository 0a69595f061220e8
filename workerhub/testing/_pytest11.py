"""Entry point of the pytest plugin (``pytest11``, name ``workerhub``): loads :mod:`workerhub.testing.plugin`.

Why a shim rather than pointing the entry point at the plugin itself: pytest registers an entry-point
plugin under the entry point's name, so the same module loaded again by its own name (``-p
workerhub.testing.plugin``, or ``pytest_plugins = ["workerhub.testing.plugin"]`` in a conftest) would be
refused as "already registered under a different name". Through ``pytest_plugins`` the plugin is always
registered under its module name, and every way of asking for it loads it exactly once.
``-p no:workerhub`` still turns it off.
"""

pytest_plugins = ["workerhub.testing.plugin"]
