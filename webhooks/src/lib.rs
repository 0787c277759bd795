//! kgate-webhooks: reserved for admission webhooks (AdmissionReview v1) and the TokenReview /
//! SubjectAccessReview webhook server. Nothing is here yet: kgate calls no admission webhook and
//! serves no webhook (README, "What is not there yet").
