/*
 * test_acd.c — Agglomerative Contextual Decomposition through C: a caller's batched scorer (a linear
 * score s(S) = Σ_{i∈S} v_i, where the 1-D hierarchy is known by hand), the buffer sizes of
 * sa_acd_capacity, the final merges of 2-D, and the status codes of bad arguments.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>

/* context: the values v (one per position or pixel); counts calls and masks. */
typedef struct {
    const float *v;
    int64_t size;
    int calls;
    int64_t masks;
} linear_scorer;

static int linear_score(void *context, const float *masks, int64_t n_masks, int64_t mask_size, float *scores) {
    linear_scorer *s = (linear_scorer *)context;
    if (mask_size != s->size) return 5;
    s->calls++;
    s->masks += n_masks;
    for (int64_t m = 0; m < n_masks; m++) {
        float total = 0;
        for (int64_t i = 0; i < mask_size; i++) total += masks[m * mask_size + i] * s->v[i];
        scores[m] = total;
    }
    return 0;
}

static int failing_score(void *context, const float *masks, int64_t n_masks, int64_t mask_size, float *scores) {
    (void)context; (void)masks; (void)n_masks; (void)mask_size; (void)scores;
    return 3;
}

/* The hand-computed hierarchy of v = (1, -8, 2, .5, 6, -1) at percentile 99.5 (see the Swift tests). */
static void test_1d_hand_hierarchy(void) {
    const float v[6] = {1, -8, 2, 0.5f, 6, -1};
    linear_scorer s = {v, 6, 0, 0};
    int64_t dims[1] = {6}, units = 0, max_levels = 0;
    EXPECT_OK(sa_acd_capacity(1, dims, 1, &units, &max_levels));
    CHECK(units == 6 && max_levels == 6, "capacity %lld %lld", (long long)units, (long long)max_levels);
    int32_t labels[36];
    float scores[36], unit_scores[6], full = 0;
    int64_t n_levels = 0;
    EXPECT_OK(sa_acd_1d_scored(linear_score, &s, 6, 1, 99.5, 1, 0, labels, scores, unit_scores, &full, &n_levels));
    const int32_t want[4][6] = {{0, 1, 0, 0, 0, 0}, {0, 1, 1, 0, 2, 0}, {1, 1, 1, 0, 2, 2}, {1, 1, 1, 1, 1, 1}};
    const float want_scores[4][2] = {{-8, NAN}, {-6, 6}, {-5, 5}, {0.5f, NAN}};
    CHECK(n_levels == 4, "n_levels %lld", (long long)n_levels);
    for (int t = 0; t < 4 && n_levels == 4; t++) {
        for (int i = 0; i < 6; i++) CHECK(labels[t * 6 + i] == want[t][i], "level %d unit %d: %d", t, i, labels[t * 6 + i]);
        for (int k = 0; k < 2; k++) {
            float got = scores[t * 6 + k], w = want_scores[t][k];
            CHECK(isnan(w) ? isnan(got) : got == w, "level %d label %d: score %g, want %g", t, k + 1, got, w);
        }
        for (int k = 2; k < 6; k++) CHECK(isnan(scores[t * 6 + k]), "level %d: absent label %d is NaN", t, k + 1);
    }
    CHECK(full == 0.5f, "full score %g", full);
    for (int i = 0; i < 6; i++) CHECK(unit_scores[i] == v[i], "unit score %d", i);
    /* One call for the units (and the whole input), one per iteration but the last, whose one component is
     * the whole input, already scored. */
    CHECK(s.calls == 4, "calls: %d", s.calls);
}

/* 2-D: four corner pixels and one iteration, then three final merges into one component. */
static void test_2d_final_merges(void) {
    float v[36];
    for (int i = 0; i < 36; i++) v[i] = (float)(i % 5) / 16;
    v[0] = 4; v[5] = 4.25f; v[30] = 4.5f; v[35] = 4.75f;
    linear_scorer s = {v, 36, 0, 0};
    int64_t dims[2] = {6, 6}, units = 0, max_levels = 0;
    EXPECT_OK(sa_acd_capacity(2, dims, 1, &units, &max_levels));
    CHECK(units == 36 && max_levels == 71, "capacity %lld %lld", (long long)units, (long long)max_levels);
    int32_t *labels = malloc(sizeof(int32_t) * 71 * 36), merges[35 * 2];
    float *scores = malloc(sizeof(float) * 71 * 36), unit_scores[36], gains[35], full = 0;
    int64_t n_levels = 0, n_iter = 0;
    EXPECT_OK(sa_acd_2d_scored(linear_score, &s, 6, 6, 1, 90, 1, 1, labels, scores, unit_scores, &full, merges, gains,
                               &n_levels, &n_iter));
    CHECK(n_iter == 1 && n_levels == 4, "levels %lld, iteration levels %lld", (long long)n_levels, (long long)n_iter);
    /* Linear scores: a merge gains min(s1, s2), so 4 joins 3 (gain 4.5), then 3 joins 2 (4.25), then 2 joins 1. */
    CHECK(labels[0] == 1 && labels[5] == 2 && labels[30] == 3 && labels[35] == 4, "raster labels");
    CHECK(merges[0] == 3 && merges[1] == 4 && gains[0] == 4.5f, "first merge %d %d gain %g", merges[0], merges[1], gains[0]);
    CHECK(merges[2] == 2 && merges[3] == 3 && gains[1] == 4.25f, "second merge %d %d gain %g", merges[2], merges[3], gains[1]);
    CHECK(merges[4] == 1 && merges[5] == 2 && gains[2] == 4.0f, "third merge %d %d gain %g", merges[4], merges[5], gains[2]);
    for (int i = 0; i < 36; i++) CHECK(labels[3 * 36 + i] == (i == 0 || i == 5 || i == 30 || i == 35 ? 1 : 0), "last level");
    CHECK(scores[3 * 36] == 17.5f, "the last component's score %g", scores[3 * 36]);
    free(labels);
    free(scores);
}

static void test_errors(void) {
    const float v[4] = {1, 2, 3, 4};
    linear_scorer s = {v, 4, 0, 0};
    int64_t dims[3] = {4, 4, 4}, units = 0, levels = 0, n = 0;
    int32_t labels[64], merges[64];
    float scores[64], unit_scores[16], gains[16], full = 0;
    EXPECT_ERROR(sa_acd_capacity(3, dims, 1, &units, &levels), SA_ERR_SHAPE, "dims");
    EXPECT_ERROR(sa_acd_capacity(1, dims, 0, &units, &levels), SA_ERR_INVALID_ARGUMENT, "block_size");
    EXPECT_ERROR(sa_acd_capacity(1, NULL, 1, &units, &levels), SA_ERR_NULL_POINTER, "dims");
    EXPECT_ERROR(sa_acd_capacity(1, dims, 1, &units, NULL), SA_ERR_NULL_POINTER, "max_levels");
    EXPECT_ERROR(sa_acd_1d_scored(NULL, &s, 4, 1, 50, 1, 0, labels, scores, unit_scores, &full, &n), SA_ERR_NULL_POINTER,
                 "scorer");
    EXPECT_ERROR(sa_acd_1d_scored(linear_score, &s, -4, 1, 50, 1, 0, labels, scores, unit_scores, &full, &n),
                 SA_ERR_INVALID_ARGUMENT, "length");
    EXPECT_ERROR(sa_acd_1d_scored(linear_score, &s, 4, 1, 150, 1, 0, labels, scores, unit_scores, &full, &n),
                 SA_ERR_INVALID_ARGUMENT, "percentile_include");
    EXPECT_ERROR(sa_acd_1d_scored(linear_score, &s, 4, 1, NAN, 1, 0, labels, scores, unit_scores, &full, &n),
                 SA_ERR_INVALID_ARGUMENT, "percentile_include");
    EXPECT_ERROR(sa_acd_1d_scored(linear_score, &s, 4, 1, 50, 0, 0, labels, scores, unit_scores, &full, &n),
                 SA_ERR_INVALID_ARGUMENT, "block_size");
    EXPECT_ERROR(sa_acd_1d_scored(linear_score, &s, 4, 1, 50, 1, -2, labels, scores, unit_scores, &full, &n),
                 SA_ERR_INVALID_ARGUMENT, "max_iterations");
    EXPECT_ERROR(sa_acd_1d_scored(failing_score, NULL, 4, 1, 50, 1, 0, labels, scores, unit_scores, &full, &n),
                 SA_ERR_INVALID_ARGUMENT, "status 3");
    EXPECT_ERROR(sa_acd_1d_scored(linear_score, &s, 4, 1, 50, 1, 0, NULL, scores, unit_scores, &full, &n),
                 SA_ERR_NULL_POINTER, "labels");
    EXPECT_ERROR(sa_acd_1d_scored(linear_score, &s, 4, 1, 50, 1, 0, labels, scores, unit_scores, &full, NULL),
                 SA_ERR_NULL_POINTER, "n_levels");
    EXPECT_ERROR(sa_acd_2d_scored(linear_score, &s, 2, 2, 0, 50, 1, 0, labels, scores, unit_scores, &full, merges, gains,
                                  &n, &n), SA_ERR_INVALID_ARGUMENT, "channels");
    /* The scorer's size is the mask size: a 2 × 3 image is 6 elements, this scorer answers 5 (its own error). */
    EXPECT_ERROR(sa_acd_2d_scored(linear_score, &s, 2, 3, 1, 50, 1, 0, labels, scores, unit_scores, &full, merges, gains,
                                  &n, &n), SA_ERR_INVALID_ARGUMENT, "status 5");
    /* A model: the input must be [L] or [C, L] for 1-D and [C, H, W] for 2-D; target in range. */
    int64_t shape1[1] = {4}, shape3[3] = {1, 2, 2};
    sa_model *m1 = NULL, *m3 = NULL;
    EXPECT_OK(sa_model_create(shape1, 1, &m1));
    float w[8] = {1, 0, 0, 1, 1, 1, 0, 0}, b[2] = {0, 0};
    EXPECT_OK(sa_model_add_dense(m1, w, 2, 4, b));
    const float x[4] = {1, 1, 1, 1};
    EXPECT_ERROR(sa_acd_2d(m1, x, 0, 0, 50, 1, 0, labels, scores, unit_scores, &full, merges, gains, &n, &n),
                 SA_ERR_SHAPE, "[C, H, W]");
    EXPECT_ERROR(sa_acd_1d(m1, x, 2, 0, 50, 1, 0, labels, scores, unit_scores, &full, &n), SA_ERR_OUT_OF_RANGE, "target");
    EXPECT_ERROR(sa_acd_1d(m1, x, 0, 9, 50, 1, 0, labels, scores, unit_scores, &full, &n), SA_ERR_UNKNOWN_ENUM, "score_rule");
    EXPECT_ERROR(sa_acd_1d(m1, NULL, 0, 0, 50, 1, 0, labels, scores, unit_scores, &full, &n), SA_ERR_NULL_POINTER, "x");
    EXPECT_ERROR(sa_acd_1d(NULL, x, 0, 0, 50, 1, 0, labels, scores, unit_scores, &full, &n), SA_ERR_NULL_POINTER, "model");
    EXPECT_OK(sa_model_create(shape3, 3, &m3));
    EXPECT_ERROR(sa_acd_1d(m3, x, 0, 0, 50, 1, 0, labels, scores, unit_scores, &full, &n), SA_ERR_SHAPE, "[L] or [C, L]");
    sa_model_free(m1);
    sa_model_free(m3);
}

int main(void) {
    test_1d_hand_hierarchy();
    test_2d_final_merges();
    test_errors();
    printf("  %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
