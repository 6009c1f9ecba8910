//! `wa demo` runs on this machine and tells what happened (tests being rebuilt).
