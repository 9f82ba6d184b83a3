"""Free-form caption writers with planted misalignment and ground truth, for scenes and Fashion-MNIST.

Each writer phrases known factor values with one of two *styles* (``a`` to develop on, ``b`` to report
on: disjoint sentence patterns, filler and partly different synonyms), and plants incomplete, wrong
and unrelated captions at chosen rates: :mod:`.phrasing` (patterns), :mod:`.plant` (kinds and the
truth table), :mod:`.scenes` and :mod:`.fashion` (the writers), :mod:`.scene_words` and
:mod:`.fashion_words` (their vocabularies and patterns). Generation only: no detection here.
"""
