/*
 * test_train.c — the trainer through the C interface: parameter count, shapes and round trip; the loss and
 * gradients of a one-layer model against closed forms; a run that separates two classes, repeats bit for
 * bit and reports its history; the callback stopping a run; early stopping; argument errors.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>

#define D 2
#define H 6
#define K 2
#define N 64

static sa_model *mlp(void) {
    float w1[H * D], b1[H], w2[K * H], b2[K];
    for (int i = 0; i < H * D; i++) w1[i] = 0.5f * (float)sin(1.3 * i + 0.2);
    for (int i = 0; i < H; i++) b1[i] = 0.1f * (float)cos(i);
    for (int i = 0; i < K * H; i++) w2[i] = 0.4f * (float)cos(0.7 * i + 0.4);
    b2[0] = 0.05f; b2[1] = -0.05f;
    int64_t shape[1] = {D};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_dense(m, w1, H, D, b1));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_TANH, 0));
    EXPECT_OK(sa_model_add_dense(m, w2, K, H, b2));
    return m;
}

static int calls = 0;
static int stop_at_three(void *user, int64_t epoch, double train_loss, double val_loss, double val_accuracy) {
    (void)val_loss; (void)val_accuracy;
    calls++;
    CHECK(user == &calls, "user_data is passed through");
    CHECK(isfinite(train_loss), "train loss %g", train_loss);
    return epoch == 3;
}

int main(void) {
    sa_model *m = mlp();
    int64_t count = 0, total = 0, shape[4], ndim = 0;
    EXPECT_OK(sa_model_parameter_count(m, &count, &total));
    CHECK(count == 4 && total == H * D + H + K * H + K, "count %lld total %lld", (long long)count, (long long)total);
    EXPECT_OK(sa_model_parameter_shape(m, 0, shape, &ndim));
    CHECK(ndim == 2 && shape[0] == H && shape[1] == D, "weight shape");
    EXPECT_OK(sa_model_parameter_shape(m, 3, shape, &ndim));
    CHECK(ndim == 1 && shape[0] == K, "bias shape");
    EXPECT_ERROR(sa_model_parameter_shape(m, 4, shape, &ndim), SA_ERR_OUT_OF_RANGE, "index = 4");
    float params[64], grads[64];
    EXPECT_ERROR(sa_model_parameters(m, params, 3), SA_ERR_BUFFER_TOO_SMALL, "capacity");
    EXPECT_OK(sa_model_parameters(m, params, 64));
    CHECK(fabsf(params[1] - 0.5f * (float)sin(1.5)) < 1e-7f, "first weights in order");
    sa_model *same = NULL;
    EXPECT_OK(sa_model_with_parameters(m, params, total, &same));
    EXPECT_ERROR(sa_model_with_parameters(m, params, total - 1, &same), SA_ERR_SHAPE, "count");

    /* Data: two classes on either side of x0 + x1 = 0, with a margin. */
    float x[N * D];
    int64_t y[N];
    seed_rnd(7);
    for (int i = 0; i < N; i++) {
        float a, b;
        do { a = 2 * rnd(); b = 2 * rnd(); } while (fabsf(a + b) < 0.4f);
        x[2 * i] = a; x[2 * i + 1] = b; y[i] = a + b > 0;
    }

    /* Loss and gradients: the bias gradient of the last layer is mean(softmax − onehot), summing to 0. */
    double loss = 0;
    EXPECT_OK(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, NULL, 0, 0, &loss, grads, 64));
    CHECK(loss > 0 && loss < 2, "loss %g", loss);
    CHECK(fabsf(grads[total - 1] + grads[total - 2]) < 1e-6f, "output bias gradients sum to zero");
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, x, SA_LOSS_CROSS_ENTROPY, NULL, 0, 0, &loss, grads, 64), SA_ERR_INVALID_ARGUMENT, "y_value must be NULL");
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, NULL, NULL, SA_LOSS_CROSS_ENTROPY, NULL, 0, 0, &loss, grads, 64), SA_ERR_NULL_POINTER, "y_class");
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, 7, NULL, 0, 0, &loss, grads, 64), SA_ERR_UNKNOWN_ENUM, "loss");
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, NULL, 0, 0, &loss, grads, 10), SA_ERR_BUFFER_TOO_SMALL, "grads_capacity");
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_MSE, NULL, 0, 0, &loss, grads, 64), SA_ERR_INVALID_ARGUMENT, "y_class must be NULL");
    int64_t bad = y[5];
    y[5] = 2;
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, NULL, 0, 0, &loss, grads, 64), SA_ERR_OUT_OF_RANGE, "y_class[5] = 2");
    y[5] = bad;

    /* A run: 100 % training accuracy, the history, bit-identical weights for the same seed. */
    sa_train_options o = sa_train_default_options();
    CHECK(o.struct_size == sizeof(sa_train_options) && o.loss == SA_LOSS_CROSS_ENTROPY && o.optimizer == SA_OPTIMIZER_ADAM, "defaults");
    CHECK(o.learning_rate == 1e-3 && o.beta1 == 0.9 && o.beta2 == 0.999 && o.eps == 1e-8 && o.epochs == 10 && o.batch_size == 32 && o.shuffle == 1, "defaults");
    o.epochs = 40;
    o.batch_size = 8;
    o.learning_rate = 0.03;
    o.seed = 3;
    double history[40 * SA_TRAIN_HISTORY_COLUMNS];
    int64_t epochs = 0;
    sa_model *t1 = NULL, *t2 = NULL;
    EXPECT_OK(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &t1, history, 40 * SA_TRAIN_HISTORY_COLUMNS, &epochs));
    CHECK(epochs == 40, "epochs run %lld", (long long)epochs);
    CHECK(history[0] > history[39 * 3], "train loss falls: %g → %g", history[0], history[39 * 3]);
    CHECK(isnan(history[1]) && isnan(history[2]), "no validation: NaN columns");
    float out[N * K];
    EXPECT_OK(sa_forward(t1, x, N, out));
    int right = 0;
    for (int i = 0; i < N; i++) right += (out[2 * i + 1] > out[2 * i]) == (y[i] == 1);
    CHECK(right == N, "training accuracy %d / %d", right, N);
    EXPECT_OK(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &t2, NULL, 0, NULL));
    float p1[64], p2[64];
    EXPECT_OK(sa_model_parameters(t1, p1, 64));
    EXPECT_OK(sa_model_parameters(t2, p2, 64));
    CHECK(memcmp(p1, p2, sizeof(float) * (size_t)total) == 0, "same seed, same weights");
    sa_model_free(t2);

    /* The callback stops after epoch 3; validation columns are filled. */
    calls = 0;
    EXPECT_OK(sa_train(m, x, N, y, NULL, x, N, y, NULL, &o, stop_at_three, &calls, &t2, history, 40 * 3, &epochs));
    CHECK(calls == 3 && epochs == 3, "callback calls %d, epochs %lld", calls, (long long)epochs);
    CHECK(isfinite(history[7]) && history[8] >= 0 && history[8] <= 1, "validation loss %g accuracy %g", history[7], history[8]);
    sa_model_free(t2);

    /* Early stopping on accuracy with patience 2: stops once the training set is separated. */
    o.patience = 2;
    o.metric = SA_METRIC_ACCURACY;
    EXPECT_OK(sa_train(m, x, N, y, NULL, x, N, y, NULL, &o, NULL, NULL, &t2, history, 40 * 3, &epochs));
    CHECK(epochs < 40, "early stopping after %lld epochs", (long long)epochs);
    sa_model_free(t2);

    /* Errors name the argument. */
    EXPECT_ERROR(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &t2, NULL, 0, NULL), SA_ERR_INVALID_ARGUMENT, "validation set");
    o.patience = 0;
    EXPECT_ERROR(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &t2, history, 10, NULL), SA_ERR_BUFFER_TOO_SMALL, "history_capacity");
    EXPECT_ERROR(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, NULL, NULL, 0, NULL), SA_ERR_NULL_POINTER, "out_model");
    EXPECT_ERROR(sa_train(m, x, N, y, NULL, NULL, N, NULL, NULL, &o, NULL, NULL, &t2, NULL, 0, NULL), SA_ERR_NULL_POINTER, "val_x");
    EXPECT_ERROR(sa_train(m, x, N, y, NULL, x, N, NULL, NULL, &o, NULL, NULL, &t2, NULL, 0, NULL), SA_ERR_NULL_POINTER, "val_y_class");
    sa_train_options b = o;
    b.optimizer = 5;
    EXPECT_ERROR(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &b, NULL, NULL, &t2, NULL, 0, NULL), SA_ERR_UNKNOWN_ENUM, "optimizer");
    b = o; b.struct_size = 8;
    EXPECT_ERROR(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &b, NULL, NULL, &t2, NULL, 0, NULL), SA_ERR_INVALID_ARGUMENT, "struct_size");
    b = o; b.learning_rate = -1;
    EXPECT_ERROR(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &b, NULL, NULL, &t2, NULL, 0, NULL), SA_ERR_INVALID_ARGUMENT, "lr");
    b = o; b.batch_size = 0;
    EXPECT_ERROR(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &b, NULL, NULL, &t2, NULL, 0, NULL), SA_ERR_INVALID_ARGUMENT, "batch_size");
    b = o; b.learning_rate = 1e30; b.optimizer = SA_OPTIMIZER_SGD; b.loss = SA_LOSS_MSE; b.metric = SA_METRIC_LOSS;
    float targets[N * K];
    for (int i = 0; i < N * K; i++) targets[i] = 1000.0f * (float)(i % 3);
    EXPECT_ERROR(sa_train(m, x, N, NULL, targets, NULL, 0, NULL, NULL, &b, NULL, NULL, &t2, NULL, 0, NULL), SA_ERR_NUMERICAL, "at epoch 1, step");
    float xnan[N * D];
    memcpy(xnan, x, sizeof x);
    xnan[9] = NAN;
    EXPECT_ERROR(sa_train(m, xnan, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &t2, NULL, 0, NULL), SA_ERR_NON_FINITE, "x contains");

    /* Initialisation: seeded, within PyTorch's bound 1/sqrt(fan_in). */
    sa_model *i1 = NULL;
    EXPECT_OK(sa_model_initialized(m, 9, &i1));
    EXPECT_OK(sa_model_parameters(i1, p1, 64));
    for (int i = 0; i < H * D; i++) CHECK(fabsf(p1[i]) < 1 / sqrtf((float)D), "initial weight %d = %g", i, p1[i]);
    sa_model_free(i1);

    sa_model_free(t1);
    sa_model_free(same);
    sa_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
