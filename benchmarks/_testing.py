"""What the benchmarks' tests share."""

import torch


class OneTorchThread:
    """Mixin for a TestCase: torch on one thread during the class's tests (restored after).

    On a 2-core machine that runs other jobs, torch's two OpenMP threads wait for each other
    at every operator (measured here: a reference step 0.06 s on one thread, 5.5 s on two).
    """

    @classmethod
    def setUpClass(cls):
        cls._torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        torch.set_num_threads(cls._torch_threads)
