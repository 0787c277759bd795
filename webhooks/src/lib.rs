//! kgate-webhooks: admission webhooks (AdmissionReview v1) and the TokenReview /
//! SubjectAccessReview webhook server.
