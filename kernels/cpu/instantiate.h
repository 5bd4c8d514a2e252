// Explicit instantiation of a CPU kernel template for float and double (the two CPU compute types).
#pragma once
#define MR_INSTANTIATE_FD(decl_macro) decl_macro(float) decl_macro(double)
