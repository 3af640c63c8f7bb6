package agent

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func metav1ListOptions(selector map[string]string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: labels.SelectorFromSet(selector).String()}
}

func metav1GetOptions() metav1.GetOptions { return metav1.GetOptions{} }
