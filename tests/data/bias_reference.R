# Reference numbers for tests/numerics/test_bias.py (run from tests/data: Rscript bias_reference.R).
# R 4.2.2 with metafor 3.8.1. R is not a dependency of hiermodels or its tests: the numbers
# this prints are pasted into the tests, each with its R call.
suppressMessages(library(metafor))
cat("metafor", as.character(packageVersion("metafor")), "\n")
eg <- read.csv("egger2001.csv")
eg <- escalc(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = eg)
bcg <- read.csv("bcg.csv")
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
show <- function(lab, r) cat(sprintf("%s: stat=%.10g p=%.10g est=%s lb=%s ub=%s dfs=%s\n", lab,
  r$zval, r$pval, format(r$est, digits = 10), format(r$ci.lb, digits = 10),
  format(r$ci.ub, digits = 10), r$dfs))
# -- regtest
for (pr in c("sei", "vi", "ninv", "sqrtninv")) {
  show(paste("eg rma REML", pr), regtest(rma(yi, vi, data = eg), predictor = pr))
  show(paste("eg lm", pr), regtest(rma(yi, vi, data = eg), model = "lm", predictor = pr))
}
show("eg rma DL knha sei", regtest(rma(yi, vi, data = eg, method = "DL", test = "knha")))
show("eg rma EE sei", regtest(rma(yi, vi, data = eg, method = "EE")))
show("bcg rma REML sei", regtest(rma(yi, vi, data = bcg)))
show("bcg lm sei", regtest(rma(yi, vi, data = bcg), model = "lm"))
# -- ranktest
r <- ranktest(rma(yi, vi, data = eg)); cat(sprintf("eg ranktest: tau=%.10g p=%.10g\n", r$tau, r$pval))
r <- ranktest(rma(yi, vi, data = bcg)); cat(sprintf("bcg ranktest: tau=%.10g p=%.10g\n", r$tau, r$pval))
y <- c(0.1, 0.5, -0.2, 0.3, 0.8, 0.1, 0.4); v <- c(0.04, 0.09, 0.04, 0.16, 0.25, 0.09, 0.01)
r <- suppressWarnings(ranktest(y, v)); cat(sprintf("ties ranktest: tau=%.10g p=%.10g\n", r$tau, r$pval))
# -- trimfill
for (nm in c("bcg", "eg")) for (m in c("EE", "REML", "DL")) for (e in c("L0", "R0")) {
  tf <- trimfill(rma(yi, vi, data = get(nm), method = m), estimator = e)
  cat(sprintf("%s %s %s: k0=%d side=%s se.k0=%.10g b=%.10g se=%.10g lb=%.10g ub=%.10g tau2=%.10g p.k0=%s\n",
    nm, m, e, tf$k0, tf$side, tf$se.k0, tf$beta, tf$se, tf$ci.lb, tf$ci.ub, tf$tau2,
    format(tf$p.k0, digits = 10)))
  if (tf$k0 > 0) cat("  fill yi:", format(tf$yi[tf$fill], digits = 10),
                     "\n  fill vi:", format(tf$vi[tf$fill], digits = 10), "\n")
}
