//! Round trip of every OASIS XML test-case message through the TTLV codec (to be written).
