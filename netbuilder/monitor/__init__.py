"""Live training monitor views (pyqtgraph): curves, feature maps, filters, weights and
gradients, confusion matrix, mistakes, and the data fit."""
