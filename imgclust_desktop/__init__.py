"""imgclust-desktop: turn a folder of images into an explorable, curatable map of visual groups."""

import os

__version__ = "0.1.0"

# OpenMP threads (torch's CPU kernels, numba under UMAP) spin while they wait for work by default. Our
# decode threads run beside inference, and a laptop has other programs: then the spinning threads steal
# the cores the work needs. Measured on 2 busy cores: an EfficientNet batch took 3.3 s spinning, 0.36 s
# passive. Must be set before torch is first imported; a value the person set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
