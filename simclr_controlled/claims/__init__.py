"""Checks of the paper's claims (docs/DESIGN.md §5) as pure functions of saved results.

Every check takes the saved analysis results (plain dicts of floats / numpy
arrays; schemas in `results`), returns a `Claim` with the verdict and every
number behind it, and never edits a number. A claim that does not hold is
reported as such.

- `statistics`: bootstrap intervals, G, Kendall's tau;
- `evidence`: `Evidence` (one judged comparison), `Claim`, their JSON;
- `hierarchy`: H1-H5 (Sec. 2, Fig. 2, B.1-B.3);
- `dsprites`: D1-D3 and the invariance table (Sec. 3, Fig. 3);
- `suppression`: S1-S3 of the feature-suppression experiment (§5.2);
- `seeds`: the claims pooled over replicates (two-level bootstrap);
- `report`: the text tables.
"""
from simclr_controlled.claims.dsprites import (check_d1, check_d2, check_d3,
                                               check_dsprites, invariance_over_seeds,
                                               invariance_table)
from simclr_controlled.claims.evidence import (MIN_PAIRED_ITEMS, Claim,
                                               Evidence, claims_to_json)
from simclr_controlled.claims.hierarchy import (check_h1, check_h2, check_h3,
                                                check_h4, check_h5,
                                                check_hierarchy)
from simclr_controlled.claims.seeds import pool_claims
from simclr_controlled.claims.suppression import (check_s1, check_s2, check_s3,
                                                  check_suppression)
from simclr_controlled.claims.report import (format_invariance_table,
                                             format_table)
from simclr_controlled.claims.results import FACTORS, LAYERS, MODELS, SPLITS
from simclr_controlled.claims.statistics import (bootstrap_ci,
                                                 paired_bootstrap_ci,
                                                 two_sample_bootstrap_ci)

__all__ = [
    "FACTORS", "LAYERS", "MIN_PAIRED_ITEMS", "MODELS", "SPLITS",
    "Claim", "Evidence",
    "bootstrap_ci", "paired_bootstrap_ci", "two_sample_bootstrap_ci",
    "check_h1", "check_h2", "check_h3", "check_h4", "check_h5",
    "check_hierarchy",
    "check_d1", "check_d2", "check_d3", "check_dsprites", "invariance_table",
    "check_s1", "check_s2", "check_s3", "check_suppression",
    "invariance_over_seeds",
    "claims_to_json", "format_table", "format_invariance_table", "pool_claims",
]
