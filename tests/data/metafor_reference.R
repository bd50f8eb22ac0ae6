# Reference numbers for tests/numerics (run from tests/data: Rscript metafor_reference.R).
# R 4.2.2 with metafor 3.8.1 (Debian r-cran-metafor). R is not a dependency of hiermodels or
# its tests: the numbers this prints are pasted into the tests, each with its R call.
suppressMessages(library(metafor))
cat("metafor", as.character(packageVersion("metafor")), "\n")
p <- function(label, x) cat(label, ":", sprintf("%.10g", x), "\n")
exact <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)

# -- escalc
nor <- read.csv("normand1999.csv")
for (m in c("MD", "SMD", "ROM")) {
  e <- escalc(m, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nor)
  p(paste("normand", m, "yi[1:3]"), e$yi[1:3]); p(paste("normand", m, "vi[1:3]"), e$vi[1:3])
  p(paste("normand", m, "sum yi, vi"), c(sum(e$yi), sum(e$vi)))
}
cur <- read.csv("curtis1998.csv")
e <- escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = cur)
p("curtis ROM yi[1:3]", e$yi[1:3]); p("curtis ROM vi[1:3]", e$vi[1:3])
p("curtis ROM sum yi, vi", c(sum(e$yi), sum(e$vi)))
mol <- read.csv("molloy2014.csv")
mcd <- read.csv("mcdaniel1994.csv")
for (m in c("COR", "ZCOR")) {
  e <- escalc(m, ri = ri, ni = ni, data = mol)
  p(paste("molloy", m, "yi[1:3]"), e$yi[1:3]); p(paste("molloy", m, "vi[1:3]"), e$vi[1:3])
  e <- escalc(m, ri = ri, ni = ni, data = mcd)
  p(paste("mcdaniel", m, "sum yi, vi"), c(sum(e$yi), sum(e$vi)))
}
pri <- read.csv("pritz1997.csv")
for (m in c("PR", "PLO")) {
  e <- escalc(m, xi = xi, ni = ni, data = pri)
  p(paste("pritz", m, "yi[5]"), e$yi[5]); p(paste("pritz", m, "vi[5]"), e$vi[5])  # xi = ni
  p(paste("pritz", m, "sum yi, vi"), c(sum(e$yi), sum(e$vi)))
  for (to in c("all", "if0all", "none")) {
    e <- escalc(m, xi = xi, ni = ni, data = pri, to = to)
    p(paste("pritz", m, to, "yi[1], vi[1]"), c(e$yi[1], e$vi[1]))
  }
}
hart <- read.csv("hart1999.csv")
niel8 <- read.csv("nielweise2008.csv")
for (m in c("IR", "IRLN")) {
  e <- escalc(m, xi = x1i, ti = t1i, data = hart)
  p(paste("hart", m, "yi[1:2]"), e$yi[1:2]); p(paste("hart", m, "vi[1:2]"), e$vi[1:2])
  e <- escalc(m, xi = c(0, 5), ti = c(100, 200))
  p(paste("zero", m, "yi, vi"), c(e$yi, e$vi))
}
e <- escalc("IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = hart)
p("hart IRR yi[1:2]", e$yi[1:2]); p("hart IRR vi[1:2]", e$vi[1:2])
e <- escalc("IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = niel8)
p("niel8 IRR sum yi, vi", c(sum(e$yi), sum(e$vi)))
e <- escalc("IRR", x1i = c(0, 0, 4), t1i = c(100, 100, 100), x2i = c(0, 3, 5), t2i = c(90, 90, 90),
            drop00 = TRUE)
p("zero IRR drop00 yi, vi", c(e$yi, e$vi))
hine <- read.csv("hine1989.csv")
e <- escalc("RD", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = hine)
p("hine RD yi", e$yi); p("hine RD vi", e$vi)
yus <- subset(read.csv("yusuf1985.csv"), table == "6" & !is.na(ai))
e <- escalc("PETO", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = yus)
p("yusuf PETO yi[1:3]", e$yi[1:3]); p("yusuf PETO vi[1:3]", e$vi[1:3])
p("yusuf PETO sum yi, vi", c(sum(e$yi), sum(e$vi)))
p("yusuf PETO Pitt (row 11) yi, vi", c(e$yi[11], e$vi[11]))
e <- escalc("PETO", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = yus, to = "none")
p("yusuf PETO to=none Gupta (row 16) yi, vi", c(e$yi[16], e$vi[16]))
e <- escalc("PETO", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = yus, drop00 = TRUE)
p("yusuf PETO drop00 NA rows", which(is.na(e$yi)))
n7 <- read.csv("nielweise2007.csv")
for (m in c("RR", "OR", "RD", "PETO")) {
  for (to in c("only0", "all", "if0all", "none")) {
    e <- escalc(m, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = n7, to = to)
    p(paste("niel7", m, to, "yi[1:2]"), e$yi[1:2]); p(paste("niel7", m, to, "vi[1:2]"), e$vi[1:2])
  }
  e <- escalc(m, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = n7, drop00 = TRUE, add = 1)
  p(paste("niel7", m, "drop00 add=1 yi[14:16]"), e$yi[14:16]); p(paste("niel7", m, "drop00 add=1 vi[14:16]"), e$vi[14:16])
}
bcg <- read.csv("bcg.csv")
for (m in c("RR", "OR")) {
  e <- escalc(m, ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
  p(paste("bcg", m, "sum yi, vi"), c(sum(e$yi), sum(e$vi)))
}

# -- rma.uni: estimators, knha, QM, predict, fitstats, confint, influence, cumul
dat <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
smd <- escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nor)
rau <- read.csv("raudenbush1985.csv")
methods <- c("EE", "DL", "HE", "HS", "SJ", "PM", "EB", "ML", "REML")
for (m in methods) {
  for (nm in c("bcg", "smd", "rau")) {
    d <- switch(nm, bcg = dat, smd = smd, rau = rau)
    r <- rma(yi, vi, data = d, method = m, control = exact)
    r0 <- rma(yi, vi, data = d, method = m)
    p(paste(nm, m, "exact tau2, se.tau2, beta, se, I2, H2"), c(r$tau2, r$se.tau2, r$beta, r$se, r$I2, r$H2))
    p(paste(nm, m, "default tau2"), r0$tau2)
  }
  r <- rma(yi, vi, mods = ~ ablat, data = dat, method = m, control = exact)
  p(paste("bcg~ablat", m, "exact tau2, se.tau2"), c(r$tau2, r$se.tau2))
}
for (test in c("z", "knha")) {
  r <- rma(yi, vi, mods = ~ ablat, data = dat, test = test, control = exact)
  p(paste("bcg~ablat REML", test, "beta, se, stat, pval, ci.lb, ci.ub"), c(r$beta, r$se, r$zval, r$pval, r$ci.lb, r$ci.ub))
  p(paste("bcg~ablat REML", test, "QM, QMdf, QMp"), c(r$QM, r$QMdf, r$QMp))
  pr <- predict(r, newmods = c(10, 50))
  p(paste("bcg~ablat REML", test, "predict(10, 50) pred, se, ci.lb, ci.ub, pi.lb, pi.ub"),
    c(pr$pred, pr$se, pr$ci.lb, pr$ci.ub, pr$pi.lb, pr$pi.ub))
  r <- rma(yi, vi, mods = ~ ablat + year, data = dat, test = test, control = exact)
  p(paste("bcg~ablat+year REML", test, "QM, QMp, QM(btt=3)"), c(r$QM, r$QMp, anova(r, btt = 3)$QM))
}
r <- rma(yi, vi, data = rau, test = "knha", control = exact)
p("rau REML knha exact beta, se, tval, pval, ci.lb, ci.ub, QM, QMp", c(r$beta, r$se, r$zval, r$pval, r$ci.lb, r$ci.ub, r$QM, r$QMp))
pr <- predict(r)
p("rau REML knha predict pi.lb, pi.ub", c(pr$pi.lb, pr$pi.ub))
r <- rma(yi, vi, data = rau, test = "knha")
p("rau REML knha default beta, se, ci.lb, ci.ub", c(r$beta, r$se, r$ci.lb, r$ci.ub))
for (m in c("ML", "REML", "DL", "EE")) {
  r <- rma(yi, vi, data = dat, method = m, control = exact)
  p(paste("bcg", m, "fitstats"), c(fitstats(r)))
  r <- rma(yi, vi, mods = ~ ablat, data = dat, method = m, control = exact)
  p(paste("bcg~ablat", m, "fitstats"), c(fitstats(r)))
}
for (m in c("DL", "REML")) {
  r <- rma(yi, vi, data = dat, method = m)
  ci <- confint(r, control = list(tol = 1e-12))
  p(paste("bcg", m, "confint tau2, tau, I2, H2 (est, lb, ub)"), t(ci$random))
}
r <- rma(yi, vi, mods = ~ ablat, data = dat)
ci <- confint(r, control = list(tol = 1e-12))
p("bcg~ablat REML confint tau2 (est, lb, ub)", ci$random[1, ])
for (test in c("z", "knha")) {
  r <- rma(yi, vi, data = dat, test = test, control = exact)
  inf <- influence(r)
  for (col in c("rstudent", "dffits", "cook.d", "cov.r", "tau2.del", "QE.del", "hat", "weight"))
    p(paste("bcg REML", test, "influence", col), inf$inf[[col]])
  p(paste("bcg REML", test, "influence dfbs"), inf$dfbs$intrcpt)
  p(paste("bcg REML", test, "influence is.infl"), as.integer(inf$is.infl))
}
r <- rma(yi, vi, mods = ~ ablat, data = dat, method = "DL")
inf <- influence(r)
for (col in c("rstudent", "dffits", "cook.d", "cov.r", "tau2.del", "hat"))
  p(paste("bcg~ablat DL influence", col), inf$inf[[col]])
for (test in c("z", "knha")) {
  r <- rma(yi, vi, data = dat, test = test, method = "DL")
  cu <- cumul(r, order = dat$year)
  for (col in c("estimate", "se", "pvals", "ci.lb", "ci.ub", "Q", "Qp", "tau2", "I2", "H2"))
    p(paste("bcg DL", test, "cumul(order=year)", col), cu[[col]])
}
