"""Meta-analysis from study estimates: the spec, the study data, the engines and the result
(``hm.meta_analysis``)."""
