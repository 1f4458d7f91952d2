# C API of the real-time tick. Placeholder until the S14-S15 kernel lands (issue 3).
cdef double clamp_c(double value, double low, double high) noexcept nogil
