# Reference numbers for tests/numerics/test_multilevel.py and test_robust.py (three-level
# meta-analysis, issue 16). Run from tests/data: Rscript multilevel_reference.R
# R 4.2.2, metafor 3.8.1, clubSandwich 0.5.8 (Debian r-cran-metafor, r-cran-clubsandwich).
# R is not a dependency of hiermodels or its tests: the numbers this prints are pasted into
# the tests, each with its R call.
suppressMessages({library(metafor); library(clubSandwich)})
cat("R", R.version$major, R.version$minor, "metafor", as.character(packageVersion("metafor")),
    "clubSandwich", as.character(packageVersion("clubSandwich")), "\n")
p <- function(label, x) cat(label, ":", sprintf("%.12g", x), "\n")
tight <- list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)
# nlminb reports non-convergence below 1e-10 on assink2016 (the optimum is the same to 12
# digits with optimizer = "Nelder-Mead", reltol = 1e-15)
tight_asn <- list(rel.tol = 1e-10, iter.max = 10000, eval.max = 10000)

show <- function(tag, res) {
  p(paste(tag, "beta"), coef(res)); p(paste(tag, "se"), res$se)
  p(paste(tag, "ci.lb"), res$ci.lb); p(paste(tag, "ci.ub"), res$ci.ub)
  p(paste(tag, "sigma2"), res$sigma2)
  p(paste(tag, "logLik, deviance, AIC, BIC, AICc"), fitstats(res))
  p(paste(tag, "QE, QEp"), c(res$QE, res$QEp))
  if (res$p == 1) {
    pr <- predict(res)
    p(paste(tag, "pred, pi.lb, pi.ub"), c(pr$pred, pr$pi.lb, pr$pi.ub))
  }
  # I^2 by level (metafor FAQ "I^2 for multilevel and multivariate models")
  W <- diag(1 / res$vi); X <- model.matrix(res)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  p(paste(tag, "I2 (between, within)"),
    100 * res$sigma2 / (sum(res$sigma2) + (res$k - res$p) / sum(diag(P))))
}

robust_show <- function(tag, res, cluster) {
  r1 <- robust(res, cluster = cluster)  # CR1, df = n_clusters - p
  p(paste(tag, "CR1 se"), r1$se); p(paste(tag, "CR1 tval"), r1$zval)
  p(paste(tag, "CR1 pval"), r1$pval); p(paste(tag, "CR1 ci.lb"), r1$ci.lb)
  p(paste(tag, "CR1 df"), r1$ddf)
  r0 <- robust(res, cluster = cluster, adjust = FALSE)  # CR0
  p(paste(tag, "CR0 se"), r0$se)
  r2 <- robust(res, cluster = cluster, clubSandwich = TRUE)  # CR2 + Satterthwaite
  p(paste(tag, "CR2 se"), r2$se); p(paste(tag, "CR2 df"), r2$ddf)
  p(paste(tag, "CR2 pval"), r2$pval); p(paste(tag, "CR2 ci.lb"), r2$ci.lb)
  ct <- coef_test(res, vcov = "CR2", cluster = cluster, test = "Satterthwaite")
  p(paste(tag, "coef_test CR2 SE"), ct$SE); p(paste(tag, "coef_test CR2 df"), ct$df_Satt)
  p(paste(tag, "coef_test CR2 p"), ct$p_Satt)
}

# -- dat.konstantopoulos2011: 56 studies in 11 districts
kon <- read.csv("konstantopoulos2011.csv")
for (m in c("REML", "ML")) {
  res <- rma.mv(yi, vi, random = ~ 1 | district/study, data = kon, method = m, control = tight)
  show(paste("kon", m), res)
}
res <- rma.mv(yi, vi, random = ~ 1 | district/study, data = kon, control = tight)
robust_show("kon REML", res, kon$district)
res <- rma.mv(yi, vi, mods = ~ I(year - 1990), random = ~ 1 | district/study, data = kon,
              control = tight)
show("kon REML year", res)
robust_show("kon REML year", res, kon$district)

# -- dat.assink2016: 100 effect sizes in 17 studies
asn <- read.csv("assink2016.csv")
for (m in c("REML", "ML")) {
  res <- rma.mv(yi, vi, random = ~ 1 | study/esid, data = asn, method = m, control = tight_asn)
  show(paste("assink", m), res)
}
res <- rma.mv(yi, vi, mods = ~ factor(deltype), random = ~ 1 | study/esid, data = asn,
              control = tight_asn)
show("assink REML deltype", res)
robust_show("assink REML deltype", res, asn$study)
