"""tf.keras 2 (the ``tf_keras`` package, and ``tf.keras`` in TensorFlow < 2.16): ``Conv{1,2,3}DTranspose``.

The arithmetic is Keras 3's (see :mod:`tconv.conventions.keras`):
``conv_utils.deconv_output_length`` gives the same sizes and ``tf.nn.conv*_transpose``
the same windows, with the same failure on an even kernel with padding='same' and
output_padding=0. Where tf.keras 2 differs (checked on tf_keras 2.21):

* ``Conv2DTranspose`` requires equal dilation rates on both axes
  ("Expected the 2 dimensions of the `dilation_rate` argument to be equal");
* ``Conv3DTranspose`` silently IGNORES ``dilation_rate``: it computes, and sizes,
  the layer with dilation 1. tconv describes what it computes and warns;
* on TensorFlow's plain CPU kernel (:mod:`tconv.conventions.tf_cpu`),
  ``Conv2DTranspose`` runs dilation and channels-first data where Keras 3 fails:
  it dilates through ``tf.nn.atrous_conv2d_transpose`` and moves
  channels-first data to channels-last itself. The 1-D layer (and the 3-D one
  for channels-first data) still fails there.
"""
from __future__ import annotations

from ..errors import ConfigError
from ..geometry import Geometry
from . import tf_cpu
from ._base import per_axis
from .keras import Keras


class TfKeras(Keras):
    name = "tf_keras"
    title = "tf.keras 2"
    api = "tf_keras.layers.Conv*DTranspose"
    rule = Keras.rule + "; tf.keras 2 also needs equal 2-D dilation rates and ignores dilation in 3-D"
    tf_backend = "tf.keras 2"
    forward_api = "tf_keras.layers.Conv*D"
    other_backends = ""

    def cpu_refusals(self, cpu: tf_cpu.TfCpu, dilation: tuple[int, ...], channels_first: bool) -> list[tuple[str, str]]:
        ndim = len(dilation)
        return tf_cpu.refusals(
            cpu, ndim=ndim,
            dilations=dilation if ndim == 1 else (1,) * ndim,  # 2-D dilates by atrous convolution, 3-D ignores it
            channels_first=channels_first and ndim != 2,       # 2-D moves channels-first data itself
            string_padding=True,
        )

    def _build(self, input_shape, kernel_size, args) -> Geometry:
        ndim = len(input_shape)
        dilation = per_axis("dilation_rate", args["dilation_rate"], ndim, self.title, minimum=1)
        if ndim == 2 and dilation[0] != dilation[1]:
            raise ConfigError(
                f"dilation_rate={dilation}: tf.keras 2 Conv2DTranspose expects the 2 dimensions of the "
                "dilation_rate argument to be equal to each other"
            )
        if ndim == 3 and any(d > 1 for d in dilation):
            # the layer still refuses strides > 1 with the dilation it then ignores
            self.check_strides_and_dilation(per_axis("strides", args["strides"], ndim, self.title, minimum=1), dilation)
            geometry = super()._build(input_shape, kernel_size, {**args, "dilation_rate": 1})
            note = (
                f"tf.keras 2 Conv3DTranspose ignores dilation_rate={dilation}: it computes (and sizes) the layer "
                "with dilation 1, as shown; Keras 3 and tconv's 'keras' convention apply the dilation"
            )
            return Geometry(geometry.axes, self.name, {**geometry.args, "dilation_rate": dilation},
                            geometry.notes + (note,), geometry.groups, geometry.runtime_errors)
        geometry = super()._build(input_shape, kernel_size, args)
        return Geometry(geometry.axes, self.name, geometry.args, geometry.notes, geometry.groups, geometry.runtime_errors)


CONVENTION = TfKeras()
