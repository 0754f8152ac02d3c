"""What a fit writes: mixedup-style tables, predictions, the solution artefact, figures, atomic files."""
