//! ARO profile-ui-healthcare
