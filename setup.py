"""Maps the user's top-level folders onto one collision-safe import root, ``promptopt``.

optimizer/      -> promptopt                 (the core)
search_spaces/  -> promptopt.search_spaces
workers/        -> promptopt.workers
cli/            -> promptopt.cli
"""

from setuptools import find_packages, setup

ROOTS = {
    "promptopt": "optimizer",
    "promptopt.search_spaces": "search_spaces",
    "promptopt.workers": "workers",
    "promptopt.cli": "cli",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = [], {}
    for name, folder in ROOTS.items():
        package_dir[name] = folder
        packages.append(name)
        packages += [f"{name}.{sub}" for sub in find_packages(folder)]
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()
setup(
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={
        "promptopt": [
            "store/migrations/*.ini",
            "store/migrations/*.mako",
            "store/migrations/versions/*.py",
            "reports/templates/*",
        ]
    },
    include_package_data=True,
)
