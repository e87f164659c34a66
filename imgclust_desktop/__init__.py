"""imgclust-desktop: turn a folder of images into an explorable, curatable map of visual groups."""

__version__ = "0.1.0"
