/* _fast.c - dino._fast, the Python package's C extension: a model's predictions (outputs,
 * outputs and Jacobians, J v and J^T w) on NumPy arrays without ctypes. One sample through
 * ctypes paid about 3 us in Python for its argument checks, result arrays, array addresses and
 * the call; this pays a fraction of a microsecond.
 *
 * It calls libdino through the function addresses that python/dino/_lib.py's ctypes handle
 * found (the library the package loaded, whichever it is), so it links against nothing but
 * Python, and it uses no NumPy C API: arrays come in through the buffer protocol and are made
 * by numpy.empty. It takes only the common case: a numpy.ndarray of the right shape, C-contiguous,
 * float32 or float64 for predictions and float64 for the products. Anything else returns
 * NotImplemented and _model.py's Python path takes it (copies, conversions and the error
 * messages are its). The model's lock (_model.py's per-model RLock) is held around the call, as
 * on the Python path, and the GIL is released while libdino computes. A failing status is
 * raised by _errors.check, the Python path's function, in the same thread. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

typedef int (*predict_fn)(void *model, long long n, const void *x, void *y, void *J);
typedef int (*product_fn)(void *model, long long n, const double *x, const double *v, double *y, double *r);

typedef struct {
    PyObject ob_base;
    void *handle; /* the dino_model; NULL once closed */
    predict_fn predict, predict_f32;
    product_fn jvp, vjp;
    Py_ssize_t in, out;
    PyObject *acquire, *release;            /* the model's lock's bound methods */
    PyObject *empty, *ndarray;              /* numpy.empty, numpy.ndarray */
    PyObject *f32, *f64;                    /* numpy.dtype('float32'), numpy.dtype('float64') */
    PyObject *check, *closed_error;         /* _errors.check; DinoError */
    PyObject *shape_y, *shape_J, *shape_in; /* (out,), (out, in), (in,) */
} Predictor;

static void predictor_dealloc(Predictor *p) {
    Py_XDECREF(p->acquire), Py_XDECREF(p->release), Py_XDECREF(p->empty), Py_XDECREF(p->ndarray);
    Py_XDECREF(p->f32), Py_XDECREF(p->f64), Py_XDECREF(p->check), Py_XDECREF(p->closed_error);
    Py_XDECREF(p->shape_y), Py_XDECREF(p->shape_J), Py_XDECREF(p->shape_in);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyObject *predictor_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    unsigned long long handle, predict, predict_f32, jvp, vjp;
    Py_ssize_t in, out;
    PyObject *lock, *empty, *ndarray, *f32, *f64, *check, *closed_error;
    if (kwargs && PyDict_Size(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "Predictor takes positional arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "KKKKKnnOOOOOOO", &handle, &predict, &predict_f32, &jvp, &vjp, &in, &out, &lock, &empty,
                          &ndarray, &f32, &f64, &check, &closed_error))
        return NULL;
    Predictor *p = (Predictor *)type->tp_alloc(type, 0);
    if (!p) return NULL;
    p->handle = (void *)(uintptr_t)handle;
    p->predict = (predict_fn)(uintptr_t)predict;
    p->predict_f32 = (predict_fn)(uintptr_t)predict_f32;
    p->jvp = (product_fn)(uintptr_t)jvp;
    p->vjp = (product_fn)(uintptr_t)vjp;
    p->in = in, p->out = out;
    p->acquire = PyObject_GetAttrString(lock, "acquire");
    p->release = p->acquire ? PyObject_GetAttrString(lock, "release") : NULL;
    Py_INCREF(empty), Py_INCREF(ndarray), Py_INCREF(f32), Py_INCREF(f64), Py_INCREF(check), Py_INCREF(closed_error);
    p->empty = empty, p->ndarray = ndarray, p->f32 = f32, p->f64 = f64, p->check = check;
    p->closed_error = closed_error;
    p->shape_y = Py_BuildValue("(n)", out);
    p->shape_J = Py_BuildValue("(nn)", out, in);
    p->shape_in = Py_BuildValue("(n)", in);
    if (!p->release || !p->shape_y || !p->shape_J || !p->shape_in) {
        Py_DECREF(p);
        return NULL;
    }
    return (PyObject *)p;
}

/* x as a C-contiguous float32 (itemsize 4) or float64 (8) array of shape [dim] or [B, dim] in
 * *view: 1, else 0 with nothing held (the Python path's case). f64_only: float64 alone. */
static int take_input(Predictor *p, PyObject *x, Py_ssize_t dim, int f64_only, Py_buffer *view) {
    if ((PyObject *)Py_TYPE(x) != p->ndarray) return 0;
    if (PyObject_GetBuffer(x, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        return 0;
    }
    const char *f = view->format ? view->format : "B";
    int ok = (!strcmp(f, "d") || (!f64_only && !strcmp(f, "f"))) && (view->ndim == 1 || view->ndim == 2) &&
        view->shape[view->ndim - 1] == dim;
    if (!ok) PyBuffer_Release(view);
    return ok;
}

/* A new C-ordered array of `shape` (one sample's, or [n] + it) and dtype, its address in *at. */
static PyObject *new_array(Predictor *p, PyObject *shape, int batch, Py_ssize_t n, PyObject *dtype, void **at) {
    PyObject *full = shape;
    if (batch) {
        Py_ssize_t k = PyTuple_GET_SIZE(shape);
        full = PyTuple_New(k + 1);
        if (!full) return NULL;
        PyTuple_SET_ITEM(full, 0, PyLong_FromSsize_t(n));
        for (Py_ssize_t i = 0; i < k; i++) {
            PyObject *d = PyTuple_GET_ITEM(shape, i);
            Py_INCREF(d);
            PyTuple_SET_ITEM(full, i + 1, d);
        }
    }
    PyObject *a = PyObject_CallFunctionObjArgs(p->empty, full, dtype, NULL);
    if (batch) Py_DECREF(full);
    if (!a) return NULL;
    Py_buffer v;
    if (PyObject_GetBuffer(a, &v, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    *at = v.buf; /* numpy's own new array: its memory stays where it is while we hold it */
    PyBuffer_Release(&v);
    return a;
}

/* The model's lock taken and its handle (NULL, lock released and DinoError set: closed). */
static void *lock_model(Predictor *p) {
    PyObject *r = PyObject_CallObject(p->acquire, NULL);
    if (!r) return NULL;
    Py_DECREF(r);
    if (p->handle) return p->handle;
    r = PyObject_CallObject(p->release, NULL);
    Py_XDECREF(r);
    if (r) PyErr_SetString(p->closed_error, "the model is closed");
    return NULL;
}

static int unlock_model(Predictor *p) {
    PyObject *r = PyObject_CallObject(p->release, NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* status != 0: _errors.check raises its exception; NULL returned. */
static PyObject *raise_status(Predictor *p, int status) {
    PyObject *r = PyObject_CallFunction(p->check, "i", status);
    if (r) {
        Py_DECREF(r);
        PyErr_Format(PyExc_RuntimeError, "libdino returned status %d without an error", status);
    }
    return NULL;
}

static PyObject *predict(Predictor *p, PyObject *x, int jac) {
    Py_buffer xv;
    if (!take_input(p, x, p->in, 0, &xv)) Py_RETURN_NOTIMPLEMENTED;
    int f64 = xv.itemsize == 8, batch = xv.ndim == 2;
    Py_ssize_t n = batch ? xv.shape[0] : 1;
    PyObject *dt = f64 ? p->f64 : p->f32, *y = NULL, *J = NULL, *result = NULL;
    void *yp = NULL, *Jp = NULL, *h;
    y = new_array(p, p->shape_y, batch, n, dt, &yp);
    if (y && jac) J = new_array(p, p->shape_J, batch, n, dt, &Jp);
    if (!y || (jac && !J) || !(h = lock_model(p))) goto done;
    predict_fn fn = f64 ? p->predict : p->predict_f32;
    int st;
    PyThreadState *ts = PyEval_SaveThread(); /* the GIL released while libdino computes */
    st = fn(h, (long long)n, xv.buf, yp, Jp);
    PyEval_RestoreThread(ts);
    if (unlock_model(p)) goto done;
    if (st) {
        raise_status(p, st);
        goto done;
    }
    if (jac) {
        result = PyTuple_Pack(2, y, J);
    } else {
        result = y;
        Py_INCREF(y);
    }
done:
    PyBuffer_Release(&xv);
    Py_XDECREF(y), Py_XDECREF(J);
    return result;
}

static PyObject *product(Predictor *p, PyObject *args, int transpose) {
    PyObject *x, *v;
    if (!PyArg_ParseTuple(args, "OO", &x, &v)) return NULL;
    Py_buffer xv, vv;
    Py_ssize_t vdim = transpose ? p->out : p->in;
    if (!take_input(p, x, p->in, 1, &xv)) Py_RETURN_NOTIMPLEMENTED;
    if (!take_input(p, v, vdim, 1, &vv)) {
        PyBuffer_Release(&xv);
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (vv.ndim != xv.ndim || (xv.ndim == 2 && vv.shape[0] != xv.shape[0])) { /* the Python path says why */
        PyBuffer_Release(&xv), PyBuffer_Release(&vv);
        Py_RETURN_NOTIMPLEMENTED;
    }
    int batch = xv.ndim == 2;
    Py_ssize_t n = batch ? xv.shape[0] : 1;
    PyObject *r = NULL, *result = NULL;
    void *rp = NULL, *h;
    r = new_array(p, transpose ? p->shape_in : p->shape_y, batch, n, p->f64, &rp);
    if (!r || !(h = lock_model(p))) goto done;
    product_fn fn = transpose ? p->vjp : p->jvp;
    int st;
    PyThreadState *ts = PyEval_SaveThread();
    st = fn(h, (long long)n, xv.buf, vv.buf, NULL, rp);
    PyEval_RestoreThread(ts);
    if (unlock_model(p)) goto done;
    if (st) {
        raise_status(p, st);
        goto done;
    }
    result = r;
    Py_INCREF(r);
done:
    PyBuffer_Release(&xv), PyBuffer_Release(&vv);
    Py_XDECREF(r);
    return result;
}

static PyObject *m_value(PyObject *self, PyObject *x) { return predict((Predictor *)self, x, 0); }
static PyObject *m_value_and_jacobian(PyObject *self, PyObject *x) { return predict((Predictor *)self, x, 1); }
static PyObject *m_jvp(PyObject *self, PyObject *args) { return product((Predictor *)self, args, 0); }
static PyObject *m_vjp(PyObject *self, PyObject *args) { return product((Predictor *)self, args, 1); }
static PyObject *m_close(PyObject *self, PyObject *unused) {
    (void)unused;
    ((Predictor *)self)->handle = NULL;
    Py_RETURN_NONE;
}

static PyMethodDef predictor_methods[] = {
    {"value", m_value, METH_O, "model(x) for a C-ordered float32/float64 ndarray, else NotImplemented"},
    {"value_and_jacobian", m_value_and_jacobian, METH_O, "model.value_and_jacobian(x), else NotImplemented"},
    {"jvp", m_jvp, METH_VARARGS, "model.jvp(x, v) for C-ordered float64 ndarrays, else NotImplemented"},
    {"vjp", m_vjp, METH_VARARGS, "model.vjp(x, w) for C-ordered float64 ndarrays, else NotImplemented"},
    {"close", m_close, METH_NOARGS, "forgets the model's handle (called by Model.close under its lock)"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject PredictorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dino._fast.Predictor",
    .tp_basicsize = sizeof(Predictor),
    .tp_dealloc = (destructor)predictor_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A model's predictions on NumPy arrays (dino.Model uses it; not public)",
    .tp_methods = predictor_methods,
    .tp_new = predictor_new,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fast", "dino's C extension (not public)", -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fast(void) {
    if (PyType_Ready(&PredictorType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&PredictorType);
    if (PyModule_AddObject(m, "Predictor", (PyObject *)&PredictorType) < 0) {
        Py_DECREF(&PredictorType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
