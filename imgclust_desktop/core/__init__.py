"""The Qt-free pipeline: scan, decode, features, reduce, embed, cluster, analyse, session, export."""
