//! ARO profile-backend-healthcare
