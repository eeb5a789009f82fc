"""Dataset curation: one parallel scan of a source (hashes, thumbnails), near-duplicate removal,
image descriptors, K-means clustering, contact sheets and cluster selections."""
