"""Results: the file formats the suite writes and reads back, one module per format.

    h5       the shared HDF5 conventions: schema version, provenance attributes, checked opening
    cka      `CKAResult` (kind "cka"), written by suite.cka, read by suite.report
    attacks  `AttackStore` (kind "attack"), written by suite.attacks, read by suite.cka and suite.report
    experiment  the findings file `experiment-<name>.json` of `suite experiment` (JSON)
    provenance  command line, versions, git commit, device and date of a run

Computation lives in suite.attacks and suite.cka; both write through this package, so neither
needs the other. Atomic writing itself is suite.files; checkpoints are suite.checkpoint.
"""
