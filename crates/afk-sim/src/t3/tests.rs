//! Strictness tests of the T3 simulator.
