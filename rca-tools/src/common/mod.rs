//! What more than one tool uses.
