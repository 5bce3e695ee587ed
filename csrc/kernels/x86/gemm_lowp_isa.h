// Per-ISA entry points behind gemm_lowp.h (include from gemm_lowp*.cc only).  Each namespace is
// implemented in its own translation unit compiled for that ISA; arguments are already checked
// and the layouts are those documented in gemm_lowp.h.
#pragma once
#include "kernels/families.h"
#include "kernels/gemm_lowp.h"

namespace pybert {
namespace kernels {

namespace lowp_amx {  // gemm_lowp_amx.cc: -mamx-tile -mamx-bf16 -mamx-int8 -mavx512{f,bw,vl,dq,bf16}
void convert_rows_bf16(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                       uint16_t* Ab);
void gemm_bf16(const uint16_t* Ab, const void* packed, int64_t N, int64_t K, float* C,
               int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1, const Epilogue& ep);
void gemm_bf16_out(const uint16_t* Ab, const void* packed, int64_t N, int64_t K, uint16_t* Cb,
                   int64_t ldcb, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                   const Epilogue& ep);
void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep);
}  // namespace lowp_amx

namespace lowp_vnni {  // gemm_lowp_vnni.cc: -mavx512{f,bw,vl,dq,vnni}
// The AVX-512 quantizer (AMX-INT8 uses it too); u8_shift: store u as uint8 (the VNNI format)
// instead of int8 u - 128.
void quantize_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                   int8_t* Aq, float* a_scale, int32_t* a_zero, bool u8_shift);
// The same, each format (Int8Gemm::quantize_rows of the VNNI and AMX-INT8 tables).
void quantize_rows_u8(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                      int8_t* Aq, float* a_scale, int32_t* a_zero);
void quantize_rows_s8(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                      int8_t* Aq, float* a_scale, int32_t* a_zero);
void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep);
}  // namespace lowp_vnni

namespace lowp_avx2 {  // gemm_lowp_avx2.cc: -mavx2 -mfma
void quantize_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                   int8_t* Aq, float* a_scale, int32_t* a_zero);
void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep);
}  // namespace lowp_avx2

}  // namespace kernels
}  // namespace pybert
